"""The parts of Lambda's ``EventSourceMappingConfiguration`` that pull sources share; each
source's ``mapping_document()`` assembles its own from these (the control plane adds the
mapping's UUID, state and function)."""

from __future__ import annotations

from typing import Any

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


def stream(
    starting_position: str,
    parallelization_factor: int,
    bisect_on_error: bool,
    max_retries: int,
    max_record_age: float,
    tumbling_window: float,
) -> dict[str, Any]:
    """The fields of a stream's mapping (Kafka, Kinesis, DynamoDB Streams)."""
    return {
        "StartingPosition": starting_position,
        "ParallelizationFactor": parallelization_factor,
        "BisectBatchOnFunctionError": bisect_on_error,
        "MaximumRetryAttempts": max_retries,
        "MaximumRecordAgeInSeconds": round(max_record_age),
        "TumblingWindowInSeconds": round(tumbling_window),
    }
