#!/usr/bin/env python3
"""A stand-in for IMS on plain HTTP, for recording the pytest examples without a cloud account.

    python fake_ims.py [--port N]

prints `listening on http://127.0.0.1:PORT` and serves until killed:

| request                          | answer                                                    |
| -------------------------------- | --------------------------------------------------------- |
| GET /                            | 300, the Glance versions document                         |
| GET /v2, /v2/                    | 200, the same                                              |
| GET /v2/images/SEED_IMAGE_ID     | 200, the example image of the IMS reference                |
| GET /v2/images/POLLING_IMAGE_ID  | 200, status queued, saving, then active (one step a GET)  |
| GET /v2/images/{other}           | 404, IMS error IMG.0027                                    |
| anything else                    | 404, IMS error IMG.0027                                    |

No authentication is checked (a real endpoint checks the token or the AK/SK signature).
"""

import argparse
import json
import uuid
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ims_data import POLLING_IMAGE_ID, SEED_IMAGE_ID, SEED_OWNER

# The example response of the IMS reference, key order kept.
SEED_IMAGE = {
    "schema": "/v2/schemas/image",
    "min_disk": 100,
    "created_at": "2018-09-06T14:03:27Z",
    "__image_source_type": "uds",
    "container_format": "bare",
    "file": f"/v2/images/{SEED_IMAGE_ID}/file",
    "updated_at": "2018-09-06T15:17:33Z",
    "protected": True,
    "checksum": "d41d8cd98f00b204e9800998ecf8427e",
    "id": SEED_IMAGE_ID,
    "__isregistered": "true",
    "min_ram": 2048,
    "__lazyloading": "true",
    "owner": SEED_OWNER,
    "__os_type": "Linux",
    "__imagetype": "gold",
    "visibility": "public",
    "virtual_env_type": "FusionCompute",
    "tags": [],
    "__platform": "CentOS",
    "size": 0,
    "__os_bit": "64",
    "__os_version": "CentOS 7.3 64bit",
    "name": "CentOS 7.3 64bit vivado",
    "self": f"/v2/images/{SEED_IMAGE_ID}",
    "disk_format": "zvhd2",
    "virtual_size": None,
    "status": "active",
}
POLLING_STATUSES = ("queued", "saving", "active")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-ims"
    polls = 0
    lock = threading.Lock()

    def log_message(self, format, *args):  # quiet: the proxy logs requests
        pass

    def send_json(self, status, doc):
        # Compact, as IMS answers: cassettes then show the body as JSON, not as a string.
        body = json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json;charset=utf8")
        self.send_header("content-length", str(len(body)))
        # A trace id made afresh for every answer, as API gateways add one: re-recording the
        # same answers must still leave the cassettes as they were.
        self.send_header("x-trace-id", uuid.uuid4().hex)
        self.end_headers()
        self.wfile.write(body)

    def not_found(self, message):
        self.send_json(404, {"error": {"code": "IMG.0027", "message": message}})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        versions = {
            "versions": [
                {"id": "v2.0", "status": "CURRENT", "links": [{"href": f"{base}/v2/", "rel": "self"}]}
            ]
        }
        if path == "/":
            self.send_json(300, versions)
        elif path in ("/v2", "/v2/"):
            self.send_json(200, versions)
        elif path == f"/v2/images/{SEED_IMAGE_ID}":
            self.send_json(200, SEED_IMAGE)
        elif path == f"/v2/images/{POLLING_IMAGE_ID}":
            with Handler.lock:
                step = min(Handler.polls, len(POLLING_STATUSES) - 1)
                Handler.polls += 1
            image = dict(SEED_IMAGE, id=POLLING_IMAGE_ID, status=POLLING_STATUSES[step])
            image["self"] = f"/v2/images/{POLLING_IMAGE_ID}"
            image["file"] = f"/v2/images/{POLLING_IMAGE_ID}/file"
            self.send_json(200, image)
        elif path.startswith("/v2/images/"):
            self.not_found(f"image {path[len('/v2/images/'):]} could not be found")
        else:
            self.not_found(f"no resource {path}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
