"""SNS messages signed with the tests' own certificate, and a small HTTP server standing in for
SNS's host: it serves the certificate and records the SubscribeURL calls (the router is
given its URL as ``endpoint_url``, as it would be given moto's or LocalStack's)."""

from __future__ import annotations

import base64
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from eventrouter.sources.sns.rules import string_to_sign

CERT_PATH = "/SimpleNotificationService-tests.pem"
CERT_URL = f"https://sns.us-east-1.amazonaws.com{CERT_PATH}"


class Signer:
    """An RSA key and a self-signed certificate that sign SNS messages as SNS does."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message


def notification(topic: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": text,
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        **extra,
    }


def confirmation(topic: str, kind: str = "SubscriptionConfirmation") -> dict[str, Any]:
    token = uuid.uuid4().hex
    return {
        **notification(topic, "You have chosen to subscribe to the topic."),
        "Type": kind,
        "Token": token,
        "SubscribeURL": (
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
            f"&TopicArn={topic}&Token={token}"
        ),
    }


@contextmanager
def sns_host(
    signer: Signer | None = None, moto: str | None = None
) -> Iterator[tuple[str, list[str]]]:
    """``(url, requests)``: serves the signer's certificate, or, with ``moto``, the ones moto
    signs its deliveries with (asked of moto's server as an SNS request); every other GET is
    recorded (a subscription confirmation) and answered 200."""
    requests: list[str] = []

    def certificate(path: str) -> bytes:
        if moto is None:
            assert signer is not None and path == CERT_PATH
            return signer.pem
        # moto's server picks the service from the credential scope of the request.
        scope = "Credential=test/20260101/us-east-1/sns/aws4_request"
        request = urllib.request.Request(
            moto + path,
            headers={"Authorization": f"AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=0"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            data: bytes = answer.read()
            return data

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(f"{self.headers.get('Host')}{self.path}")
            if self.path.endswith(".pem"):
                body = certificate(self.path)
            else:
                body = b"<ConfirmSubscriptionResponse/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
