"""The SigV4 verifier against requests signed by botocore's own signer."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eventrouter.security.sigv4 import SignatureError, verify

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def signed(url: str, body: bytes = b"", method: str = "POST", **headers: str) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "lambda", "eu-west-1").add_auth(request)
    return request


def check(request: AWSRequest, *, body: bytes = b"", now: float | None = None) -> Any:
    path, _, query = request.url.split("://", 1)[1].partition("/")[2].partition("?")
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    headers.append((b"host", b"127.0.0.1:9000"))
    return verify(
        method=request.method,
        raw_path="/" + path,
        query=query,
        headers=headers,
        body=body,
        secret_for={KEY: SECRET},
        now=now,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/2015-03-31/functions/charge/invocations",
        "http://127.0.0.1:9000/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A000000000000"
        "%3Afunction%3Acharge/invocations?Qualifier=%24LATEST",
        "http://127.0.0.1:9000/reports?b=2&a=1&a=0&empty=&sp=a%20b",
    ],
)
def test_botocore_signatures_verify(url: str) -> None:
    body = b'{"amount": 3}'
    request = signed(url, body, **{"X-Amz-Invocation-Type": "Event"})
    done = check(request, body=body)
    assert (done.access_key, done.region, done.service) == (KEY, "eu-west-1", "lambda")


def test_every_part_of_the_request_is_covered() -> None:
    url = "http://127.0.0.1:9000/2015-03-31/functions/charge/invocations?a=1"
    request = signed(url, b"{}", **{"X-Amz-Invocation-Type": "Event"})
    with pytest.raises(SignatureError, match="does not match"):
        check(request, body=b"{ }")
    request.url = url.replace("charge", "refund")
    with pytest.raises(SignatureError, match="does not match"):
        check(request, body=b"{}")
    request = signed(url, b"{}", **{"X-Amz-Invocation-Type": "Event"})
    request.headers.replace_header("X-Amz-Invocation-Type", "RequestResponse")
    with pytest.raises(SignatureError, match="does not match"):
        check(request, body=b"{}")


def test_clock_skew_both_ways() -> None:
    request = signed("http://127.0.0.1:9000/x")
    signed_at = datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    at = signed_at.replace(tzinfo=datetime.UTC).timestamp()
    assert check(request, now=at + 299)
    for now in (at + 301, at - 301):
        with pytest.raises(SignatureError, match="Signature expired") as caught:
            check(request, now=now)
        assert caught.value.code == "InvalidSignatureException"


def test_malformed_authorization() -> None:
    request = signed("http://127.0.0.1:9000/x")
    request.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=nonsense")
    with pytest.raises(SignatureError) as caught:
        check(request)
    assert caught.value.code == "IncompleteSignatureException"
    del request.headers["Authorization"]
    with pytest.raises(SignatureError) as caught:
        check(request)
    assert caught.value.code == "MissingAuthenticationTokenException"
