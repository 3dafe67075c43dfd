"""Not collected by default (no test_ prefix): run it explicitly in replay mode to see a test fail
because it asked for something nobody recorded. The test body itself tolerates the error answer
(599 from the proxy); the plugin's verdict fails it, naming the missed request."""

import urllib.error
import urllib.request

from ims_data import NEVER_RECORDED_IMAGE_ID

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_an_image_nobody_recorded(ims_vcr):
    try:
        OPENER.open(f"{ims_vcr.url}/v2/images/{NEVER_RECORDED_IMAGE_ID}", timeout=10).close()
    except urllib.error.HTTPError as e:
        assert e.code == 599  # ims-vcr's miss status
