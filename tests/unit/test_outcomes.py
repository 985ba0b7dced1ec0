"""Lambda's outcome rules as pure functions (eventrouter/outcomes.py), at any time."""

from __future__ import annotations

import msgspec
import pytest

from eventrouter.config import FunctionSettings
from eventrouter.errors import FunctionError, FunctionTimeout, Throttled
from eventrouter.outcomes import (
    Outcome,
    Status,
    async_next,
    batch_item_failure,
    delivery_retry,
    failed,
    failed_items,
    invocation_record,
    result_of,
    stream_next,
    timeout_error,
)

SETTINGS = FunctionSettings(max_retries=2, retry_delays=(60, 120), max_event_age=3600)
T0 = 1_000_000.0


def step(status: Status, attempts: int = 0, throttles: int = 0, now: float = T0):  # type: ignore[no-untyped-def]
    return async_next(
        status,
        attempts=attempts,
        throttles=throttles,
        enqueued_at=T0,
        now=now,
        settings=SETTINGS,
    )


def test_success_is_final() -> None:
    assert step(Status.SUCCESS, attempts=1).condition == "Success"


def test_errors_are_retried_after_the_delays_then_exhausted() -> None:
    first = step(Status.FUNCTION_ERROR)
    assert (first.final, first.attempts, first.due) == (False, 1, T0 + 60)
    second = step(Status.TIMEOUT, attempts=1, now=T0 + 60)
    assert (second.final, second.attempts, second.due) == (False, 2, T0 + 180)
    third = step(Status.FUNCTION_ERROR, attempts=2, now=T0 + 180)
    assert (third.condition, third.attempts) == ("RetriesExhausted", 3)


def test_a_retry_past_the_maximum_age_ends_the_event() -> None:
    late = step(Status.FUNCTION_ERROR, now=T0 + 3600 - 30)
    assert late.condition == "EventAgeExceeded"


def test_throttles_back_off_without_counting_as_retries() -> None:
    throttled = step(Status.THROTTLED, attempts=1, throttles=3)
    assert (throttled.final, throttled.attempts, throttled.throttles) == (False, 1, 4)
    assert throttled.due == T0 + 8  # 1, 2, 4, 8 s ...
    assert step(Status.THROTTLED, throttles=20).due == T0 + 300  # ... up to 5 min


def test_invalid_payloads_are_not_retried() -> None:
    invalid = step(Status.INVALID_PAYLOAD)
    assert (invalid.condition, invalid.attempts) == ("RetriesExhausted", 1)


def test_stream_retries_until_max_retries_or_record_age() -> None:
    rules = {"max_retries": 2, "max_record_age": 60.0, "retry_backoff": (0.5, 30.0)}
    assert stream_next(1, oldest=T0, now=T0 + 1, **rules) == 0.5  # type: ignore[arg-type]
    assert stream_next(2, oldest=T0, now=T0 + 1, **rules) == 1.0  # type: ignore[arg-type]
    assert stream_next(3, oldest=T0, now=T0 + 1, **rules) == "RetryAttemptsExhausted"  # type: ignore[arg-type]
    assert stream_next(1, oldest=T0, now=T0 + 61, **rules) == "RecordAgeExceeded"  # type: ignore[arg-type]
    forever = {"max_retries": -1, "max_record_age": -1, "retry_backoff": (1.0, 30.0)}
    assert stream_next(10_000, oldest=0, now=T0, **forever) == 30.0  # type: ignore[arg-type]


def test_delivery_retries_back_off_to_five_minutes() -> None:
    assert [delivery_retry(n) for n in (1, 2, 3, 20)] == [1, 2, 4, 300]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, []),
        (b"null", []),
        (b'"done"', []),
        (b"{}", []),
        (b'{"batchItemFailures": []}', []),
        (b'{"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "a"}]}', [0, 2]),
        (b'{"batchItemFailures": [{"itemIdentifier": "zz"}]}', [0, 1, 2]),
        (b'{"batchItemFailures": [{"other": "a"}]}', [0, 1, 2]),
        (b'{"batchItemFailures": "a"}', [0, 1, 2]),
        (b"not json", [0, 1, 2]),
    ],
)
def test_one_parser_for_partial_batch_responses(
    response: bytes | None, expected: list[int]
) -> None:
    assert failed_items(response, ["a", "b", "c"]) == expected


def test_stream_identifiers_go_through_the_sources_key() -> None:
    response = b'{"batchItemFailures": [{"itemIdentifier": {"tp": "t-0", "offset": 7}}]}'
    key = lambda ident: (ident["tp"], ident["offset"])  # noqa: E731
    assert failed_items(response, [("t-0", 6), ("t-0", 7)], key) == [1]
    assert failed_items(b'{"batchItemFailures": [{"itemIdentifier": "x"}]}', [("t-0", 6)], key) == [
        0
    ]


def test_records_splice_payloads_and_batch_info() -> None:
    record = msgspec.json.decode(
        invocation_record(
            request_id="r",
            function_name="f",
            condition="RetryAttemptsExhausted",
            invoke_count=3,
            request_payload=None,
            response_payload=b'{"errorType": "E"}',
            function_error=True,
            batch_info=("KafkaBatchInfo", {"batchSize": 2}),
        )
    )
    assert "requestPayload" not in record
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["KafkaBatchInfo"] == {"batchSize": 2}
    assert record["requestContext"]["functionArn"].endswith(":function:f:$LATEST")


def test_result_of_raises_what_the_outcome_stands_for() -> None:
    assert result_of(Outcome(Status.SUCCESS, "r", b"[1]")) == [1]
    with pytest.raises(Throttled):
        result_of(Outcome(Status.THROTTLED, "r", reason="ReservedFunctionConcurrency"))
    with pytest.raises(FunctionTimeout):
        result_of(failed(Status.TIMEOUT, "r", timeout_error("r", 3)))
    with pytest.raises(FunctionError) as caught:
        result_of(batch_item_failure("r"))
    assert caught.value.body["errorType"] == "BatchItemFailure"
