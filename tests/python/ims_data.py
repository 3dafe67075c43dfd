"""Constants of the ims-vcr pytest examples (the images fake_ims.py serves). The `ims_vcr`
fixture itself comes from the ims-vcr wheel's pytest plugin (entry point `pytest11`)."""

SEED_IMAGE_ID = "bc6bed6e-ba3a-4447-afcc-449174a3eb52"
UNKNOWN_IMAGE_ID = "00000000-0000-4000-8000-000000000404"
POLLING_IMAGE_ID = "5ee0a9b4-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
# Never recorded by the suite: miss_case.py asks for it.
NEVER_RECORDED_IMAGE_ID = "11111111-2222-4333-8444-555555555555"
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
# The owner of the seed image in the IMS reference: recorded cassettes carry its pseudonym.
SEED_OWNER = "1bed856811654c1cb661a6ca845ebc77"
