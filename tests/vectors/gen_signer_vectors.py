#!/usr/bin/env python3
"""Generate signer_vectors.json by running the OFFICIAL Huawei Cloud Python SDK signer.

Every vector goes through the SDK's real request pipeline
(ClientBuilder -> Client.build_future_request -> BasicCredentials.sign_request ->
huaweicloudsdkcore.signer.signer.Signer.sign), i.e. exactly what the SDK does before it
sends a request, so the headers it adds (User-Agent, Content-Type, X-Project-Id,
X-Security-Token, Host, X-Sdk-Date, X-Sdk-Content-Sha256) and the headers it signs are
the SDK's own. Only two things are pinned so that the output is reproducible:
  * the clock the signer reads (`datetime.utcnow` in the signer module), and
  * the configurable part of User-Agent (HttpConfig.user_agent), which otherwise
    embeds the OS/Python version and a per-home-directory random app id.
The SDK's intermediate values (canonical request, string to sign, signature, signed
headers) are captured by wrapping the Signer methods that compute them.
The raw path+query "on the wire" is what `requests` (the SDK's HTTP library) prepares
from the SDK's final request URL.

Usage (from the repository root):
    python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install huaweicloudsdkcore
    /tmp/sdkvenv/bin/python tests/vectors/gen_signer_vectors.py tests/vectors/signer_vectors.json
Without an argument the JSON goes to stdout.
"""

import atexit
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime

# The SDK may create ~/.huaweicloud/application_id on import of its user-agent helper;
# keep it out of the developer's home.
_HOME = tempfile.mkdtemp(prefix="sdk-vectors-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["HOME"] = _HOME

import requests  # noqa: E402  (the SDK's own HTTP library)
import huaweicloudsdkcore.signer.signer as signer_module  # noqa: E402
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.client import Client, ClientBuilder  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402
from huaweicloudsdkcore.signer.signer import Signer  # noqa: E402

try:
    from importlib.metadata import version as _dist_version
    SDK_VERSION = _dist_version("huaweicloudsdkcore")
except Exception:  # pragma: no cover - metadata missing
    SDK_VERSION = "unknown"

# Fixed, realistic stand-in for the platform part the SDK appends to its User-Agent.
PINNED_USER_AGENT = "os/Linux python/3.11.7 impl/CPython"

AK = "HPUAEXAMPLEAK0000001"
SK = "exampleSecretKey0123456789abcdefghijklmn"
TOKEN = "gQpjbi1ub3J0aC00-EXAMPLE-security-token+/=="
PROJECT = "0123456789abcdef0123456789abcdef"
IMAGE_ID = "d3c1a5f4-2b6e-4f3c-9a1e-7c5b8e2d4f60"


class _Clock:
    """The instant the signer module's patched `datetime.utcnow()` returns."""
    now = None


class _FixedDatetime(datetime):
    @classmethod
    def utcnow(cls):
        return _Clock.now


signer_module.datetime = _FixedDatetime

_captured = {}


def _wrap(name, store_as, capture_request=False):
    raw = Signer.__dict__[name]
    is_classmethod = isinstance(raw, classmethod)
    original = raw.__func__ if is_classmethod else raw

    def wrapper(self_or_cls, *args, **kwargs):
        if capture_request:
            request = args[0]
            # Snapshot of what the SDK hands to the signer, before the signer touches it.
            _captured["headers_given"] = [[k, str(v)] for k, v in request.header_params.items()]
        result = original(self_or_cls, *args, **kwargs)
        if store_as:
            _captured[store_as] = result
        return result

    setattr(Signer, name, classmethod(wrapper) if is_classmethod else wrapper)


_wrap("sign", None, capture_request=True)
_wrap("_process_signed_headers", "signed_headers")
_wrap("_process_canonical_request", "canonical_request")
_wrap("_process_string_to_sign", "string_to_sign")
_wrap("_sign_string_to_sign", "signature")


def build_client(endpoint, project_id=PROJECT, token=None, ignore_ct_for_get=False):
    credentials = BasicCredentials(AK, SK, project_id)
    if token is not None:
        credentials = credentials.with_security_token(token)
    config = HttpConfig(user_agent=PINNED_USER_AGENT,
                        ignore_content_type_for_get_request=ignore_ct_for_get)
    return (ClientBuilder(Client)
            .with_http_config(config)
            .with_credentials(credentials)
            .with_endpoint(endpoint)
            .build())


def run_case(case):
    _captured.clear()
    _Clock.now = datetime.strptime(case["x_sdk_date"], "%Y%m%dT%H%M%SZ")
    client = build_client(case["endpoint"], case.get("project_id", PROJECT), case.get("token"),
                          case.get("ignore_content_type_for_get", False))
    # Same call shape the generated service clients use (see huaweicloudsdkims ImsClient._call_api).
    header_params = dict(case.get("header_params", {}))
    # Generated clients always put the operation's Content-Type in header_params.
    header_params.setdefault("Content-Type", "application/json")
    query_params = list(case.get("query_params", []))
    request = client.build_future_request(
        case["method"], case["resource_path"], dict(case.get("path_params", {})), query_params,
        header_params, case.get("body"), None, None, None, dict(case.get("collection_formats", {})),
        None).result()

    prepared = requests.Request(request.method, request.url, headers=request.header_params,
                                data=request.body).prepare()
    path_and_query = prepared.path_url
    path, _, raw_query = path_and_query.partition("?")

    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")

    signed_headers = _captured["signed_headers"]
    return {
        "name": case["name"],
        "description": case["description"],
        "method": request.method,
        "scheme": request.schema,
        "host": request.host,
        "path": path,
        "query": [[k, str(v).lower() if isinstance(v, bool) else str(v)]
                  for k, v in (request.query_params or [])],
        "raw_query": raw_query,
        "path_and_query": path_and_query,
        "headers": _captured["headers_given"],
        "body": body.decode("utf-8"),
        "ak": AK,
        "sk": SK,
        "security_token": case.get("token"),
        "x_sdk_date": case["x_sdk_date"],
        "expected": {
            "canonical_request": _captured["canonical_request"],
            "string_to_sign": _captured["string_to_sign"],
            "signature": _captured["signature"],
            "authorization": request.header_params["Authorization"],
            "signed_headers": signed_headers,
            # Headers as the SDK hands them to `requests` (names keep the SDK's case). The signer
            # rewrites each value as the latin-1 text of its UTF-8 bytes so that `requests` puts
            # those UTF-8 bytes on the wire; we undo that to record the wire bytes as UTF-8.
            "wire_headers": [[k, v.encode("iso-8859-1").decode("utf-8")]
                             for k, v in request.header_params.items()],
        },
    }


IMS = "https://ims.cn-north-4.myhuaweicloud.com"

CASES = [
    {
        "name": "get_image_no_query",
        "description": "GlanceShowImage: GET /v2/images/{image_id}, no query, no trailing slash, "
                       "Content-Type application/json on a GET as the SDK sends it",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/images/{image_id}",
        "path_params": {"image_id": IMAGE_ID}, "x_sdk_date": "20261127T073000Z",
    },
    {
        "name": "get_trailing_slash",
        "description": "GET /v2/images/ (path already ends with '/')",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/images/",
        "x_sdk_date": "20240105T030405Z",
    },
    {
        "name": "get_without_content_type",
        "description": "GET with HttpConfig.ignore_content_type_for_get_request=True: no Content-Type, "
                       "no X-Project-Id",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/images/{image_id}",
        "path_params": {"image_id": IMAGE_ID}, "project_id": None, "ignore_content_type_for_get": True,
        "x_sdk_date": "20261127T073001Z",
    },
    {
        "name": "query_reserved_characters",
        "description": "ListImages with query values holding space / + & = % ~ * and an empty value",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/cloudimages",
        "query_params": [("name", "a b/c+d&e=f%g~h*i"), ("marker", ""), ("limit", 10),
                         ("__imagetype", "gold"), ("protected", True)],
        "x_sdk_date": "20261127T073002Z",
    },
    {
        "name": "query_non_ascii",
        "description": "Query values with non-ASCII characters (CJK and Latin-1)",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/cloudimages",
        "query_params": [("name", "镜像"), ("__os_version", "é")],
        "x_sdk_date": "20261127T073003Z",
    },
    {
        "name": "query_repeated_keys",
        "description": "Same key twice with values given out of order (collection format 'multi'), "
                       "plus keys given out of order",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/cloudimages",
        "query_params": [("tag", ["zeta", "alpha"]), ("id", IMAGE_ID), ("container_format", "bare")],
        "collection_formats": {"tag": "multi"},
        "x_sdk_date": "20261127T073004Z",
    },
    {
        "name": "post_json_body",
        "description": "POST with a non-empty JSON body",
        "method": "POST", "endpoint": IMS, "resource_path": "/v2/cloudimages/action",
        "body": {"name": "镜像-copy", "instance_id": IMAGE_ID, "tags": ["a", "b"], "min_disk": 40},
        "x_sdk_date": "20261127T073005Z",
    },
    {
        "name": "post_empty_body",
        "description": "POST with no body (empty payload hash) and project id in the path",
        "method": "POST", "endpoint": IMS, "resource_path": "/v1/{project_id}/cloudimages/{image_id}/unregister",
        "path_params": {"image_id": IMAGE_ID}, "x_sdk_date": "20261127T073006Z",
    },
    {
        "name": "host_with_port",
        "description": "Endpoint with a non-default port: Host carries it",
        "method": "GET", "endpoint": "https://ims.example.internal:8443", "resource_path": "/v2/images/{image_id}",
        "path_params": {"image_id": IMAGE_ID}, "x_sdk_date": "20261127T073007Z",
    },
    {
        "name": "security_token",
        "description": "Temporary credentials: X-Security-Token is added and signed",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/cloudimages",
        "query_params": [("id", IMAGE_ID)], "token": TOKEN, "x_sdk_date": "20261127T073008Z",
    },
    {
        "name": "header_rules",
        "description": "Extra headers: one whose name has '_' (SDK does not sign it), one with surrounding "
                       "whitespace (trimmed), one with a non-ASCII value",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/images/{image_id}",
        "path_params": {"image_id": IMAGE_ID},
        "header_params": {"X_Trace_Id": "abc", "X-Language": "  en-us  ", "X-Client-Note": "镜像 é"},
        "x_sdk_date": "20261127T073009Z",
    },
    {
        "name": "path_param_special_characters",
        "description": "Path parameter with space, ':' and '/' (the SDK quotes it with safe=''; the "
                       "canonical URI unquotes the path first, so the encoded '/' splits a segment)",
        "method": "GET", "endpoint": IMS, "resource_path": "/v2/images/{image_id}",
        "path_params": {"image_id": "a b:c/d~e"}, "x_sdk_date": "20261127T073010Z",
    },
    {
        "name": "put_non_json_content_type",
        "description": "Non-JSON Content-Type with a body: the SDK adds X-Sdk-Content-Sha256: "
                       "UNSIGNED-PAYLOAD and uses that literal as the payload hash",
        "method": "PUT", "endpoint": IMS, "resource_path": "/v2/images/{image_id}/file",
        "path_params": {"image_id": IMAGE_ID}, "header_params": {"Content-Type": "text/plain"},
        "body": "hello image", "x_sdk_date": "20261127T073011Z",
    },
    {
        "name": "non_json_content_type_empty_body",
        "description": "Non-JSON Content-Type without a body: header still added, payload hash is the "
                       "empty-body hash",
        "method": "DELETE", "endpoint": IMS, "resource_path": "/v2/images/{image_id}/file",
        "path_params": {"image_id": IMAGE_ID}, "header_params": {"Content-Type": "text/plain"},
        "x_sdk_date": "20261127T073012Z",
    },
    {
        "name": "root_path_http_default_port",
        "description": "http scheme, explicit default port kept in Host, root path '/'",
        "method": "GET", "endpoint": "http://127.0.0.1:80", "resource_path": "/",
        "x_sdk_date": "20261127T073013Z",
    },
]


def _dump(value, indent=0):
    """json.dumps(indent=2), except that short lists of scalars ([key, value] pairs) stay on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = ",\n".join("%s%s: %s" % (inner, json.dumps(k, ensure_ascii=False), _dump(v, indent + 1))
                           for k, v in value.items())
        return "{\n%s\n%s}" % (items, pad)
    if isinstance(value, list) and value:
        if all(not isinstance(v, (dict, list)) for v in value) and len(value) <= 2:
            return json.dumps(value, ensure_ascii=False)
        items = ",\n".join(inner + _dump(v, indent + 1) for v in value)
        return "[\n%s\n%s]" % (items, pad)
    return json.dumps(value, ensure_ascii=False)


def main():
    vectors = [run_case(case) for case in CASES]
    document = {
        "generator": "tests/vectors/gen_signer_vectors.py",
        "sdk": "huaweicloudsdkcore %s (huaweicloudsdkcore.signer.signer.Signer, SDK-HMAC-SHA256)" % SDK_VERSION,
        "vectors": vectors,
    }
    text = _dump(document) + "\n"
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
