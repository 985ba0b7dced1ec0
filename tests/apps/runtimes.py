"""One unmodified Lambda handler served inline, isolated and through the Runtime API, and a
Node.js handler through AWS's Node.js runtime interface client."""

from __future__ import annotations

import sys
from pathlib import Path

from eventrouter import Http, Router
from tests.apps.lambda_function import lambda_handler

APPS = Path(__file__).parent
NODE_RUNTIME = APPS.parent / "node_runtime"
NODE_RIC = NODE_RUNTIME / "node_modules" / "aws-lambda-ric" / "bin" / "index.mjs"

router = Router("runtimes")

router.on_event(Http("GET /inline/{item}"), name="inline")(lambda_handler)
router.on_event(Http("GET /isolated/{item}"), name="isolated", isolation="process")(lambda_handler)
router.external(
    "ric",
    [sys.executable, "-m", "awslambdaric", "lambda_function.lambda_handler"],
    Http("GET /ric/{item}"),
    cwd=str(APPS),
    timeout=2,
)
router.external(
    "ric-broken",
    [sys.executable, "-m", "awslambdaric", "no_such_module.handler"],
    cwd=str(APPS),
)
router.external("never-ready", ["sleep", "30"])  # never asks for an invocation
router.external(
    "node",
    ["node", str(NODE_RIC), "index.handler"],
    cwd=str(NODE_RUNTIME),
    env={"GREETING": "hello"},
)
