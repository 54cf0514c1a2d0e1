"""Real calendar clients for the tests: ical.js under node, and a Radicale CalDAV server.

Each is required: when missing it is a skip with the reason printed, and under CI=true a
failure, because a calendar test that silently ran no client proves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parent / "js"


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: a missing calendar client is a failure)")
    pytest.skip(what)


def icaljs(paths: list[Path]) -> list[dict[str, Any]]:
    """What ical.js reads from the files: one dict per event."""
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not (JS / "node_modules" / "ical.js").is_dir():
        missing("ical.js is not installed: run `npm ci --prefix tests/js`")
    result = subprocess.run(
        [str(node), str(JS / "parse_ics.mjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def radicale_server(storage: Path) -> Iterator[str]:
    """A Radicale CalDAV server on 127.0.0.1 for the duration of a test module."""
    try:
        import radicale  # noqa: F401
    except ImportError:
        missing("radicale is not installed")
    port = free_port()
    config = storage / "config"
    config.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
        "[auth]\ntype = none\n"
        f"[storage]\nfilesystem_folder = {storage / 'collections'}\n"
        "[web]\ntype = none\n"
        "[logging]\nlevel = warning\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None:
                error = process.stderr.read() if process.stderr else b""
                raise RuntimeError(f"radicale did not start: {error!r}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
