#!/usr/bin/env python3
"""Parse Prometheus text (stdin) with the official parser; print the samples as JSON.

Fails (exit 1, traceback) if the text is not valid exposition format.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(families, sort_keys=True))
