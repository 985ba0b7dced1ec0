"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright over the DevTools protocol, against the demo served by ``python -m eventrouter
run`` as ``make run`` serves it.

The page must show the demo's traffic as it happens: invocation counts that change, a failure
with its error type and message, the charts; a screenshot is kept as a test artefact
(``out/test-artifacts/dashboard.png``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import free_port, wait_for_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EVENTROUTER_TEST_ARTIFACTS", ROOT / "out" / "test-artifacts"))
#: Flags of a headless Chromium on a machine without a network or a screen.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.skip(
            "Chromium is not installed (Debian's package chromium; `make test` installs it "
            "where it can): the dashboard's browser test is skipped"
        )
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    """The demo (``handlers``) served by a real router process, its files under tmp_path."""
    port = free_port()
    log = tmp_path / "router.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eventrouter", "run", "handlers", "--http",
             f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"), "--grace", "1"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, proc, "the demo router", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def order(n: int, email: str) -> dict[str, Any]:
    return {
        "order_id": f"o-{n}",
        "email": email,
        "items": [{"sku": "tea", "quantity": 2, "unit_price": 3.5}],
    }


def test_the_dashboard_shows_the_demos_traffic_live(demo: str) -> None:
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    cell = 'tr[data-function="{}"] td.{}'
    with sync_api.sync_playwright() as p, httpx.Client(base_url=demo, timeout=10) as client:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            console_errors: list[str] = []
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            missing: list[str] = []
            page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
            page.goto(f"{demo}/dashboard")
            page.wait_for_selector("#status.live")
            assert page.inner_text(cell.format("place_order", "invocations")) == "0"
            assert page.inner_text(cell.format("place_order", "source")) == "http:POST /orders"

            for n in range(3):
                response = client.post("/orders", json=order(n, f"c{n}@example.com"))
                assert response.status_code == 200, response.text
            page.wait_for_function(
                "([selector, text]) => document.querySelector(selector)?.textContent === text",
                arg=[cell.format("place_order", "invocations"), "3"],
            )
            # quote is invoked by place_order (ctx.invoke): counted as its own function.
            assert page.inner_text(cell.format("quote", "invocations")) == "3"
            assert page.inner_text("#no-failures") == "No failures yet."

            # An address at bounce.example makes send_receipt fail: the failure shows up.
            client.post("/orders", json=order(9, "x@bounce.example")).raise_for_status()
            row = page.wait_for_selector("#failures tbody tr:has-text('ConnectionError')")
            assert row is not None
            assert "mail server refused x@bounce.example" in row.inner_text()
            assert "send_receipt" in row.inner_text()
            assert int(page.inner_text(cell.format("send_receipt", "errors"))) >= 1
            # The chart of place_order drew its invocations (an SVG polyline, no CDN).
            page.wait_for_selector('.chart[data-function="place_order"] svg polyline')
            usage = page.inner_text('#usage tr[data-function="place_order"] td.requests')
            assert int(usage) == 4

            # The page asked for nothing the router does not serve (no /favicon.ico 404).
            assert console_errors == [] and missing == [], (console_errors, missing)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
