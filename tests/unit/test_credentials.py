"""Credentials: a TOML or JSON file and the environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from eventrouter.errors import ConfigError
from eventrouter.security.credentials import Credentials


def test_toml_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "credentials.toml"
    path.write_text(
        '[[access_keys]]\nid = "AKIA1"\nsecret = "s1"\nprincipal = "billing"\n\n'
        '[[api_keys]]\nkey = "k-0123456789abcdefghij"\n'
        'principal = "arn:aws:iam::111111111111:user/app"\n'
    )
    environ = {"EVENTROUTER_ACCESS_KEY_ID": "AKIA2", "EVENTROUTER_SECRET_ACCESS_KEY": "s2"}
    credentials = Credentials.load(str(path), environ)
    assert credentials.secrets == {"AKIA1": "s1", "AKIA2": "s2"}
    assert credentials.principals["AKIA1"].id == "arn:aws:iam::000000000000:user/billing"
    assert credentials.principals["AKIA2"].id.endswith(":user/admin")
    app = credentials.api_keys["k-0123456789abcdefghij"]
    assert (app.id, app.account) == ("arn:aws:iam::111111111111:user/app", "111111111111")
    assert "s1" not in repr(credentials)
    # The file may also come from the environment.
    assert Credentials.load(None, {"EVENTROUTER_CREDENTIALS": str(path)}).secrets == {"AKIA1": "s1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"access_keys": [{"id": "A", "secret": "s"}]}', "missing required field `principal`"),
        ('{"api_keys": [{"key": "short", "principal": "p"}]}', "too short"),
        ('{"access_keys": [{"id": "A", "secret": "s", "principal": "a/b"}]}', "user name or"),
        ('{"tokens": []}', "unknown field `tokens`"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Credentials.load(str(path), {})


def test_redaction_of_fields_text_and_header_lists(
    log_records: Callable[[], list[dict[str, Any]]],
) -> None:
    from eventrouter.observability.logging import redact_secrets

    redact_secrets(["configured-key-0123456789"])
    structlog.get_logger("test").info(
        "request",
        headers=[(b"authorization", b"AWS4-HMAC-SHA256 Credential=A/x, Signature=" + b"a" * 64)],
        nested={"inner": {"X-Api-Key": "abc", "ok": "visible"}},
        note="the key configured-key-0123456789 leaked",
        pairs=[(1, 2), (10**9, 3)],
    )
    (record,) = [r for r in log_records() if r["event"] == "request"]
    text = json.dumps(record)
    assert "configured-key-0123456789" not in text and "a" * 64 not in text and "abc" not in text
    assert record["nested"]["inner"]["ok"] == "visible"
    assert record["pairs"] == [[1, 2], [10**9, 3]]
