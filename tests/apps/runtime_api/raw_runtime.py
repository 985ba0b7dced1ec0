"""A minimal runtime speaking the Runtime API by hand (standard library only): it checks how
the router answers mistakes, then reports what it saw as the invocation's result."""

import http.client
import json
import os

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))


def call(method, path, body=None):
    conn.request(method, "/2018-06-01/runtime/" + path, body=body)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


while True:
    status, headers, event = call("GET", "invocation/next")
    headers = {k.lower(): v for k, v in headers.items()}
    request_id = headers["lambda-runtime-aws-request-id"]
    if json.loads(event).get("big"):  # over the 6 MB limit
        call("POST", f"invocation/{request_id}/response", b'"' + b"x" * (7 << 20) + b'"')
        continue
    wrong, _, _ = call("POST", "invocation/not-this-one/response", b"{}")
    unknown, _, _ = call("GET", "no/such/path")
    result = {
        "wrong_id": wrong,
        "unknown_path": unknown,
        "headers": {k: v for k, v in headers.items() if k.startswith("lambda-runtime")},
        "event": event.decode(),
    }
    call("POST", f"invocation/{request_id}/response", json.dumps(result).encode())
