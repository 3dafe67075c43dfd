"""Any HTTP client that can send a header can share the proxy's main listener instead:
`ims_vcr.proxy_url` with `ims_vcr.headers` (x-ims-vcr-session) puts the request in this test's
session all the same."""

import json
import urllib.error
import urllib.request

import pytest

from ims_data import SEED_IMAGE_ID, UNKNOWN_IMAGE_ID

# Straight to loopback, whatever HTTP(S)_PROXY says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url, headers):
    try:
        with OPENER.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.mark.parametrize(
    "image_id,status", [(SEED_IMAGE_ID, 200), (UNKNOWN_IMAGE_ID, 404)], ids=["seed", "unknown"]
)
def test_get_through_the_shared_listener(ims_vcr, image_id, status):
    code, body = get(f"{ims_vcr.proxy_url}/v2/images/{image_id}", ims_vcr.headers)
    assert code == status, body
    if status == 200:
        assert body["id"] == image_id


@pytest.fixture
def seed_checked_after(ims_vcr):
    """A fixture whose clean-up still calls the proxy, through the session's own listener (as a
    fixture deleting what it created would): the session is open until it is done."""
    yield
    code, body = get(f"{ims_vcr.url}/v2/images/{SEED_IMAGE_ID}", {})
    assert code == 200, body


def test_a_fixture_reaches_the_session_in_its_clean_up(ims_vcr, seed_checked_after):
    code, body = get(f"{ims_vcr.url}/v2/images/{UNKNOWN_IMAGE_ID}", {})
    assert code == 404, body
