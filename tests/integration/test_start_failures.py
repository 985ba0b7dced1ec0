"""A source that cannot start ends ``run`` the same way for every kind: one line
``error: <Source>(...) for function '<f>': <what> (<service error code>)``, exit status 2, no
traceback and no "grace period over" line (moto for the AWS services, a closed port for
Kafka)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import free_port

pytestmark = pytest.mark.integration

APP = """
import os
from eventrouter import S3, Kafka, Kinesis, Router, Sns, Sqs

M = os.environ["MOTO"]
router = Router("broken")
SOURCES = {{
    "sns": Sns("arn:aws:sns:us-east-1:123456789012:missing", endpoint_url=M, region="us-east-1"),
    "sqs": Sqs("missing", endpoint_url=M, region="us-east-1"),
    "kinesis": Kinesis("missing", endpoint_url=M, region="us-east-1"),
    "s3": S3("missing-bucket", endpoint_url=M, region="us-east-1"),
    "kafka": Kafka("missing", group="g", bootstrap_servers="127.0.0.1:{closed}"),
}}


@router.on_event(SOURCES[os.environ["KIND"]])
async def handle(event): ...
"""

EXPECTED = {
    "sns": "error: Sns('arn:aws:sns:us-east-1:123456789012:missing') for function 'handle': "
    "Topic does not exist (NotFound)",
    "sqs": "error: Sqs('missing') for function 'handle': The specified queue does not exist. "
    "(AWS.SimpleQueueService.NonExistentQueue)",
    "kinesis": "error: Kinesis('missing') for function 'handle': ",
    "s3": "error: S3('missing-bucket') for function 'handle': The specified bucket does not "
    "exist (NoSuchBucket)",
    "kafka": "error: Kafka('missing') for function 'handle': cannot connect to 127.0.0.1:",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_source_that_cannot_start_is_one_line_and_exit_2(
    kind: str, moto: str, tmp_path: Path
) -> None:
    (tmp_path / "broken.py").write_text(APP.format(closed=free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "eventrouter", "run", "broken:router", "--no-http",
         "--state-dir", str(tmp_path / "state"), "--log-format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MOTO": moto, "KIND": kind, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(EXPECTED[kind]), last
    if kind == "kinesis":
        assert last.endswith("(ResourceNotFoundException)"), last
    assert "Traceback" not in done.stderr and "grace period over" not in done.stderr
    # Everything before the error line is the run's own format (JSON lines).
    assert all(line.startswith("{") for line in done.stderr.strip().splitlines()[:-1])
