"""openstacksdk against ims-vcr: the image endpoint is this test's session listener + /v2."""

import openstack
from openstack import exceptions
import pytest

from ims_data import SEED_IMAGE_ID, UNKNOWN_IMAGE_ID

TOKEN = "gAAAAAB-example-token"  # forwarded when recording, never stored; unchecked in replay


def connect(endpoint):
    return openstack.connect(
        auth_type="admin_token",
        auth={"token": TOKEN, "endpoint": f"{endpoint}/v2"},
        load_yaml_config=False,
        load_envvars=False,
        api_timeout=10,
        connect_retries=0,
        status_code_retries=0,
        image_connect_retries=0,
        image_status_code_retries=0,
    )


def test_get_image(ims_vcr):
    conn = connect(ims_vcr.url)
    try:
        image = conn.image.get_image(SEED_IMAGE_ID)
    finally:
        conn.close()
    assert image.id == SEED_IMAGE_ID
    assert image.status == "active"


def test_a_missing_image_raises_not_found(ims_vcr):
    conn = connect(ims_vcr.url)
    try:
        with pytest.raises(exceptions.NotFoundException):
            conn.image.get_image(UNKNOWN_IMAGE_ID)
    finally:
        conn.close()
