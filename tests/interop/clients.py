#!/usr/bin/env python3
"""Fetch one IMS image through an official Python client; print one JSON line.

    python clients.py huawei --endpoint URL --ak AK --sk SK --project-id PID --image-id ID [--ca-file PEM]
    python clients.py huawei --endpoint URL --ak AK --sk SK --region R --iam-endpoint URL --image-id ID
    python clients.py openstack --endpoint URL/v2 --token TOKEN --image-id ID
    python clients.py openstack-password --auth-url URL/v3 --username U --password P
        --project-id PID --domain D --region R --image-id ID

Without --project-id, huawei asks IAM (--iam-endpoint) for the project of --region first
(`GET /v3/projects?name=R`, AK/SK-signed). openstack-password signs in to Keystone with a password
and finds the image endpoint in the token's service catalog.

stdout: {"ok": true, "image": {...}} or {"ok": false, "error": {"type", "status", "code"}}.
Exit 0 for both (an SDK error is a valid outcome), 2 on usage errors, 1 on anything unexpected.
"""
import argparse
import json
import os
import sys
import tempfile
import traceback

# Fields that describe the transport rather than the image (never expected from to_dict(), dropped
# defensively so the record and replay outputs stay comparable).
TRANSPORT_FIELDS = {"status_code", "raw_content", "headers", "x_request_id", "X-Request-Id",
                    "request_id", "location"}


def run_huawei(args):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ServiceResponseException
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkims.v2 import GlanceShowImageRequest, ImsClient

    cfg = HttpConfig.get_default_config()
    cfg.timeout = (5, 10)
    cfg.retry_times = 0
    cfg.ignore_ssl_verification = False
    if args.ca_file:
        cfg.ssl_ca_cert = args.ca_file
    if args.project_id:
        # Explicit project id + endpoint, no region: the SDK never asks IAM for anything.
        client = (ImsClient.new_builder()
                  .with_credentials(BasicCredentials(args.ak, args.sk, args.project_id))
                  .with_endpoints([args.endpoint])
                  .with_http_config(cfg)
                  .build())
    else:
        # A region and no project id: the SDK asks IAM for the region's project first.
        from huaweicloudsdkcore.region.region import Region
        credentials = BasicCredentials(args.ak, args.sk).with_iam_endpoint(args.iam_endpoint)
        client = (ImsClient.new_builder()
                  .with_credentials(credentials)
                  .with_region(Region(args.region, args.endpoint))
                  .with_http_config(cfg)
                  .build())
    try:
        response = client.glance_show_image(GlanceShowImageRequest(image_id=args.image_id))
    except ServiceResponseException as e:  # ClientRequestException (4xx), ServerResponseException (5xx)
        return error(e, e.status_code, e.error_code)
    image = {k: v for k, v in response.to_dict().items() if k not in TRANSPORT_FIELDS}
    return {"ok": True, "image": image}


def run_openstack(args):
    import openstack
    from openstack import exceptions

    conn = openstack.connect(
        auth_type="admin_token",
        auth={"token": args.token, "endpoint": args.endpoint},
        load_yaml_config=False,  # no clouds.yaml / secure.yaml
        load_envvars=False,  # no OS_* variables
        api_timeout=10,
        # openstacksdk's defaults.json sets image_status_code_retries=5 (503/429 retried with
        # back-off), and the service-prefixed key wins over the plain one: set both.
        connect_retries=0,
        status_code_retries=0,
        image_connect_retries=0,
        image_status_code_retries=0,
    )
    try:
        image = conn.image.get_image(args.image_id)
    except exceptions.HttpException as e:  # NotFoundException, ForbiddenException, ...
        return error(e, e.status_code, None)
    finally:
        conn.close()
    attrs = image.to_dict(computed=False)
    host = args.endpoint.split("://", 1)[-1].split("/", 1)[0]
    attrs = {k: v for k, v in attrs.items()
             if k not in TRANSPORT_FIELDS and host not in json.dumps(v, default=str)}
    return {"ok": True, "image": attrs}


def run_openstack_password(args):
    import openstack
    from openstack import exceptions

    conn = openstack.connect(
        auth_type="password",
        auth={"auth_url": args.auth_url, "username": args.username, "password": args.password,
              "project_id": args.project_id, "user_domain_name": args.domain},
        region_name=args.region,
        load_yaml_config=False,
        load_envvars=False,
        api_timeout=10,
        connect_retries=0,
        status_code_retries=0,
        image_connect_retries=0,
        image_status_code_retries=0,
    )
    try:
        image = conn.image.get_image(args.image_id)
    except exceptions.HttpException as e:
        return error(e, e.status_code, None)
    finally:
        conn.close()
    attrs = image.to_dict(computed=False)
    host = args.auth_url.split("://", 1)[-1].split("/", 1)[0]
    attrs = {k: v for k, v in attrs.items()
             if k not in TRANSPORT_FIELDS and host not in json.dumps(v, default=str)}
    return {"ok": True, "image": attrs}


def error(exc, status, code):
    return {"ok": False, "error": {"type": type(exc).__name__,
                                   "status": int(status) if status is not None else None,
                                   "code": code or None}}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse already exits 2; keep it explicit
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv):
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="client", required=True, parser_class=Parser)
    hw = sub.add_parser("huawei", help="huaweicloudsdkims GlanceShowImage (AK/SK signing)")
    hw.add_argument("--endpoint", required=True)
    hw.add_argument("--ak", required=True)
    hw.add_argument("--sk", required=True)
    hw.add_argument("--project-id")
    hw.add_argument("--region")
    hw.add_argument("--iam-endpoint")
    hw.add_argument("--image-id", required=True)
    hw.add_argument("--ca-file")
    os_ = sub.add_parser("openstack", help="openstacksdk image.get_image (X-Auth-Token)")
    os_.add_argument("--endpoint", required=True, help="image endpoint, ending in /v2")
    os_.add_argument("--token", required=True)
    os_.add_argument("--image-id", required=True)
    pw = sub.add_parser("openstack-password",
                        help="openstacksdk image.get_image, signing in to Keystone with a password")
    for name in ["--auth-url", "--username", "--password", "--project-id", "--domain", "--region",
                 "--image-id"]:
        pw.add_argument(name, required=True)
    args = parser.parse_args(argv)
    if args.client == "huawei" and not args.project_id and not (args.region and args.iam_endpoint):
        parser.error("huawei needs --project-id, or --region and --iam-endpoint")
    return args


def main(argv):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ims-vcr-interop-home-") as home:
        # huaweicloudsdkcore writes ~/.huaweicloud/application_id on import and openstacksdk looks
        # for ~/.config/openstack: give both an empty throw-away home.
        os.environ["HOME"] = home
        try:
            run = {"huawei": run_huawei, "openstack": run_openstack,
                   "openstack-password": run_openstack_password}[args.client]
            result = run(args)
        except Exception:
            traceback.print_exc()
            return 1
    print(json.dumps(result, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
