"""Verifying AWS Signature Version 4 on incoming requests (what boto3 and the AWS CLI send).

The signature is recomputed from the request as received and compared in constant time.
A request is refused when its key is unknown, its signature differs, it is more than five
minutes away from the server's clock, or ``host`` / ``x-amz-date`` is not among the signed
headers. Only header signing (``Authorization: AWS4-HMAC-SHA256 ...``) is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far a request's ``X-Amz-Date`` may be from the server's clock, as in AWS (seconds).
MAX_SKEW = 300.0
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*"
)
_AMZ_DATE = re.compile(r"(\d{8})T(\d{6})Z")


class SignatureError(Exception):
    """A request whose signature cannot be accepted; ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Signed:
    """What a verified request tells: the key that signed it and its credential scope."""

    access_key: str
    region: str
    service: str


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else ():
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, list[str]],
    signed: list[str],
    payload_hash: str,
) -> str:
    # Every service but S3 encodes the (already encoded) path once more.
    path = quote(raw_path or "/", safe="/~")
    lines = [f"{name}:{','.join(' '.join(v.split()) for v in headers[name])}" for name in signed]
    return "\n".join(
        [
            method,
            path,
            canonical_query(query),
            "\n".join(lines) + "\n",
            ";".join(signed),
            payload_hash,
        ]
    )


def verify(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    secret_for: Mapping[str, str],
    now: float | None = None,
) -> Signed:
    """Check the signature of a request; return who signed it or raise :class:`SignatureError`.

    ``secret_for`` maps an access key id to its secret access key.
    """
    grouped: dict[str, list[str]] = {}
    for key, value in headers:
        grouped.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    authorization = grouped.get("authorization")
    if not authorization:
        raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTHORIZATION.fullmatch(authorization[0])
    if match is None:
        raise SignatureError(
            "IncompleteSignatureException",
            "Authorization needs AWS4-HMAC-SHA256 Credential, SignedHeaders and Signature",
        )
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureError(
            "IncompleteSignatureException", "Credential is not a SigV4 credential scope"
        )
    access_key, date, region, service, _ = scope
    secret = secret_for.get(access_key)
    if secret is None:
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    signed = match["signed"].split(";")
    if signed != sorted(signed) or "host" not in signed or any(h not in grouped for h in signed):
        raise SignatureError(
            "IncompleteSignatureException", "SignedHeaders must be sorted, name host and be present"
        )
    amz_date = (grouped.get("x-amz-date") or [""])[0]
    when = _AMZ_DATE.fullmatch(amz_date)
    if when is None or "x-amz-date" not in signed:
        raise SignatureError(
            "IncompleteSignatureException", "a signed X-Amz-Date header is required"
        )
    if when.group(1) != date:
        raise SignatureError(
            "InvalidSignatureException", "Credential date does not match X-Amz-Date"
        )
    signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    now = time.time() if now is None else now
    if abs(now - signed_at) > MAX_SKEW:
        raise SignatureError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is more than 5 minutes away from the server's time "
            f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}",
        )
    payload_hash = hashlib.sha256(body).hexdigest()
    declared = grouped.get("x-amz-content-sha256")
    if declared and declared[0] != payload_hash:
        raise SignatureError(
            "InvalidSignatureException", "X-Amz-Content-SHA256 does not match the request body"
        )
    request = canonical_request(method, raw_path, query, grouped, signed, payload_hash)
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            amz_date,
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(request.encode()).hexdigest(),
        ]
    )
    expected = hmac.new(
        signing_key(secret, date, region, service), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return Signed(access_key, region, service)
