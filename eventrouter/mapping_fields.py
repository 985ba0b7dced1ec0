"""The parts of Lambda's ``EventSourceMappingConfiguration`` that pull sources share; each
source's ``mapping_document()`` assembles its own from these (the control plane adds the
mapping's UUID, state and function)."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec


def batching(batching_window: float) -> dict[str, Any]:
    return {"MaximumBatchingWindowInSeconds": round(batching_window)}


def responses(
    report_batch_item_failures: bool, filters: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    """``FunctionResponseTypes`` and ``FilterCriteria``, when set."""
    document: dict[str, Any] = {}
    if report_batch_item_failures:
        document["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    if filters:
        document["FilterCriteria"] = {
            "Filters": [{"Pattern": msgspec.json.encode(f).decode()} for f in filters]
        }
    return document


class StreamSettings(Protocol):
    """The settings every stream source has (Kafka, Kinesis, DynamoDB Streams)."""

    @property
    def batching_window(self) -> float: ...
    @property
    def starting_position(self) -> str: ...
    @property
    def parallelization_factor(self) -> int: ...
    @property
    def bisect_on_error(self) -> bool: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def max_record_age(self) -> float: ...
    @property
    def tumbling_window(self) -> float: ...
    @property
    def report_batch_item_failures(self) -> bool: ...
    @property
    def filters(self) -> tuple[dict[str, Any], ...]: ...


def stream(source: StreamSettings) -> dict[str, Any]:
    """The fields of a stream's mapping, batching and responses included."""
    return {
        **batching(source.batching_window),
        "StartingPosition": source.starting_position,
        "ParallelizationFactor": source.parallelization_factor,
        "BisectBatchOnFunctionError": source.bisect_on_error,
        "MaximumRetryAttempts": source.max_retries,
        "MaximumRecordAgeInSeconds": round(source.max_record_age),
        "TumblingWindowInSeconds": round(source.tumbling_window),
        **responses(source.report_batch_item_failures, source.filters),
    }
