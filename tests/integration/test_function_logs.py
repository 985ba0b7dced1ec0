"""What a handler prints and logs belongs to its invocation: router records tagged with the
request id, and the Invoke API's log tail in Lambda's text and JSON formats."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eventrouter.testing import TestRouter
from tests.apps.chatty import router
from tests.services import lambda_client

pytestmark = pytest.mark.integration

Logs = Callable[[], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def server() -> Iterator[TestRouter]:
    with TestRouter(router, http="127.0.0.1:0") as app:
        yield app


@pytest.fixture(scope="module")
def lam(server: TestRouter) -> Any:
    return lambda_client(server.url)


def tail_of(response: dict[str, Any]) -> list[str]:
    return base64.b64decode(response["LogResult"]).decode().splitlines()


def function_lines(lines: list[str]) -> list[str]:
    """The lines between START and END."""
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("END RequestId: "))
    return lines[start + 1 : end]


REPORT = re.compile(
    r"REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?$"
)


@pytest.mark.parametrize("name", ["inline", "isolated"])
def test_text_tail_is_lambdas(lam: Any, name: str) -> None:
    r = lam.invoke(FunctionName=name, Payload=b'{"who": "ann"}', LogType="Tail")
    rid = r["ResponseMetadata"]["RequestId"]
    assert json.loads(r["Payload"].read()) == {"ok": True}
    lines = tail_of(r)
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {rid}"
    match = REPORT.fullmatch(lines[-1])
    assert match is not None and match.group(1) == rid, lines[-1]
    body = function_lines(lines)
    assert body[0] == "hello ann"
    assert "no newline yet ... now" not in body  # two streams: stdout's rest ends the call
    assert " ... now" in body
    assert any(re.fullmatch(rf"\[INFO\]\t\S+Z\t{rid}\tstdlib says hi", line) for line in body)
    structured = [json.loads(line) for line in body if line.startswith("{")]
    assert [(s["event"], s["n"], s["request_id"]) for s in structured] == [("structured", 3, rid)]
    assert body[-1] == "no newline yet"  # the unfinished line, written out at the end


@pytest.mark.parametrize("name", ["inline", "isolated"])
def test_text_tail_of_an_error(lam: Any, name: str) -> None:
    r = lam.invoke(FunctionName=name, Payload=b'{"fail": true}', LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    text = base64.b64decode(r["LogResult"]).decode()
    assert "[ERROR] ValueError: it went wrong\nTraceback (most recent call last):\n" in text
    assert 'raise ValueError("it went wrong")' in text
    assert text.rstrip("\t\n").split("\n")[-1].startswith("REPORT RequestId: ")


def test_json_tail(lam: Any) -> None:
    r = lam.invoke(FunctionName="inline_json", Payload=b'{"fail": true}', LogType="Tail")
    rid = r["ResponseMetadata"]["RequestId"]
    lines = tail_of(r)
    start, report = json.loads(lines[0]), json.loads(lines[-1])
    assert start["type"] == "platform.start" and start["record"]["requestId"] == rid
    assert report["type"] == "platform.report" and report["record"]["status"] == "error"
    metrics = report["record"]["metrics"]
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1
    records = [json.loads(line) for line in lines if line.startswith("{")]
    stdlib = [r for r in records if r.get("message") == "stdlib says hi"]
    assert stdlib and stdlib[0]["level"] == "INFO" and stdlib[0]["requestId"] == rid
    (error,) = [r for r in records if r.get("errorType")]
    assert error["errorType"] == "ValueError" and error["requestId"] == rid
    assert "hello nobody" in lines  # print() stays text, as in Lambda's JSON format


def test_the_tail_is_the_last_4_kb(lam: Any) -> None:
    r = lam.invoke(FunctionName="inline", Payload=json.dumps({"who": "x" * 6000}), LogType="Tail")
    log = base64.b64decode(r["LogResult"])
    assert len(log) == 4096 and log.decode().rstrip().split("\n")[-1].startswith("REPORT")


def test_log_type_is_checked(server: TestRouter) -> None:
    import httpx

    r = httpx.post(
        f"{server.url}/2015-03-31/functions/inline/invocations",
        content=b"{}",
        headers={"X-Amz-Log-Type": "Everything"},
    )
    assert r.status_code == 400
    assert r.headers["x-amzn-errortype"] == "InvalidParameterValueException"


@pytest.mark.parametrize("name", ["inline", "isolated"])
def test_output_is_records_tagged_with_the_request_id(
    log_records: Logs, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestRouter(router) as app:
        app.invoke(name, {"who": "bob"})
        print("outside any invocation")
    records = log_records()
    (hello,) = [r for r in records if r["event"] == "hello bob"]
    rid = hello["request_id"]
    assert hello["function"] == name and hello["stream"] == "stdout"
    mine = [r for r in records if r.get("request_id") == rid]
    events = {r["event"] for r in mine}
    assert {"hello bob", " ... now", "stdlib says hi", "structured", "no newline yet"} <= events
    (stdlib,) = [r for r in mine if r["event"] == "stdlib says hi"]
    assert stdlib["logger"] == "chatty" and stdlib["level"] == "info"
    # Outside an invocation the process's own stdout is untouched.
    assert "outside any invocation" in capsys.readouterr().out
    assert not any(r["event"] == "outside any invocation" for r in records)
