"""Execution environments: functions run in processes of their own (``isolation="process"``).

``pool``: each function's environments (start, reuse, scale, retire); ``environment``: one
process; ``worker`` / ``per_record``: the inside of a Python environment; ``runtime_api``:
Lambda's Runtime API for any other runtime; ``snapstart`` / ``template``: environments forked
from an initialised template; ``warmup``: provisioned concurrency; ``frames``: the wire."""
