"""A real browser for page tests: Debian's Chromium driven by Playwright, against the app
served by uvicorn on a free local port (no network beyond 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

ARTIFACTS = Path(
    os.environ.get("FIELDPLAN_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


def chromium_path() -> str:
    """Where Chromium is; skips (or fails under CI=true) when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Chromium is not installed (python3 tasks.py test installs Debian's chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: a missing browser is a failure, not a skip)")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on http://127.0.0.1:<free port> for the duration of the block."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
_VIOLATIONS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length}))"""


def check_page(page: Page, name: str) -> None:
    """What every page is asked in the browser tests: no serious or critical accessibility
    violation that axe-core finds (bundled from npm, as ical.js is; the page needs
    `bypass_csp` to take its script), and screenshots at desktop and phone size."""
    if not AXE.exists():
        message = f"axe-core is not installed at {AXE} (python3 tasks.py test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(_VIOLATIONS)
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"
    desktop = page.viewport_size
    page.screenshot(path=screenshot_path(f"{name}-desktop"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=screenshot_path(f"{name}-phone"), full_page=True)
    if desktop is not None:
        page.set_viewport_size(desktop)


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()
