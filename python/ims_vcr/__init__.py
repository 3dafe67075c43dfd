"""ims-vcr for Python: the `ims-vcr` binary (installed by this wheel), a pytest plugin
(`ims_vcr.pytest_plugin`, loaded through the `pytest11` entry point) and the pre-commit hook's
entry (`python -m ims_vcr.verify_files`). Standard library only. Docs: docs/python.md.
"""

from ims_vcr._binary import find_binary
from ims_vcr._proxy import MODES, SEQUENCES, Proxy, ProxyError, session_name

__all__ = ["MODES", "SEQUENCES", "Proxy", "ProxyError", "find_binary", "session_name"]
