"""The Huawei Cloud Python SDK (huaweicloudsdkims) against ims-vcr, one session per test.

The SDK keeps only the scheme, host and port of an endpoint, so each test gives it its own
session's listener, `ims_vcr.url`. Record with real credentials in the proxy's environment
(HUAWEICLOUD_SDK_AK/SK: the proxy re-signs every upstream request); the client's own AK/SK may
be dummies, and in replay nothing is checked.
"""

import os

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkims.v2 import GlanceShowImageRequest, ImsClient

from ims_data import POLLING_IMAGE_ID, PROJECT_ID, SEED_IMAGE_ID, UNKNOWN_IMAGE_ID


def ims_client(endpoint):
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    config.retry_times = 0
    credentials = BasicCredentials(
        os.environ.get("IMS_EXAMPLE_AK", "DUMMYAK"),
        os.environ.get("IMS_EXAMPLE_SK", "DUMMYSK"),
        os.environ.get("IMS_EXAMPLE_PROJECT_ID", PROJECT_ID),
    )
    # An explicit endpoint and project id: the SDK asks IAM for nothing.
    return (
        ImsClient.new_builder()
        .with_credentials(credentials)
        .with_endpoints([endpoint])
        .with_http_config(config)
        .build()
    )


def test_show_image(ims_vcr):
    image = ims_client(ims_vcr.url).glance_show_image(GlanceShowImageRequest(image_id=SEED_IMAGE_ID))
    assert image.id == SEED_IMAGE_ID
    assert image.status == "active"
    assert image.disk_format == "zvhd2"


def test_a_missing_image_is_a_404(ims_vcr):
    with pytest.raises(ClientRequestException) as error:
        ims_client(ims_vcr.url).glance_show_image(GlanceShowImageRequest(image_id=UNKNOWN_IMAGE_ID))
    assert error.value.status_code == 404
    assert error.value.error_code == "IMG.0027"


# strict: replay plays the recorded answers in order, and a fourth poll would be a miss.
@pytest.mark.ims_vcr(sequence="strict")
def test_wait_until_an_image_is_active(ims_vcr):
    client = ims_client(ims_vcr.url)
    statuses = []
    while not statuses or statuses[-1] != "active":
        assert len(statuses) < 10, statuses
        request = GlanceShowImageRequest(image_id=POLLING_IMAGE_ID)
        statuses.append(client.glance_show_image(request).status)
    assert statuses == ["queued", "saving", "active"]
