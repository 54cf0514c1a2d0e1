"""Set-up and run fieldplan with nothing but Python 3.11+.

`python3 tasks.py demo` and `python3 tasks.py test` are the two commands of the README. Both
create `.venv` when it is missing (or when pyproject.toml changed since), install the project
into it and then run; so a fresh clone needs no manual step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".fieldplan-installed"
# The contract check's schemathesis runs from a venv of its own: in the project's, caldav's
# HTTP client (niquests) replaces urllib3 under `requests`, which its command line needs.
CONTRACT_VENV = ROOT / ".venv-contract"
SCHEMATHESIS = "schemathesis==4.32.5"


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def ensure_contract_venv() -> Path:
    folder = CONTRACT_VENV / ("Scripts" if os.name == "nt" else "bin")
    stamp = CONTRACT_VENV / ".installed"
    if not (stamp.exists() and stamp.read_text() == SCHEMATHESIS):
        if not (folder / "python").exists():
            venv.EnvBuilder(with_pip=True).create(CONTRACT_VENV)
        _run(folder / "python", "-m", "pip", "install", "--quiet", SCHEMATHESIS)
        stamp.write_text(SCHEMATHESIS)
    return folder / "schemathesis"


def demo(extra: list[str]) -> None:
    _run(BIN / "fieldplan", "demo", *extra)


def install_js_clients() -> None:
    """ical.js, one of the real calendar clients the tests parse our output with."""
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: the ical.js tests will report it (and fail under CI=true)")
        return
    _run(npm, "ci", "--prefix", "tests/js", "--no-audit", "--no-fund", "--loglevel=error")


def install_browser() -> None:
    """Debian's Chromium for the page tests (Playwright's own browser download cannot work
    here). Needs root and apt; without them the browser tests say what is missing."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        print("chromium not found and cannot be installed here: the browser tests will say so")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "--no-install-recommends", "chromium"]
    print("+", " ".join(install), flush=True)
    if subprocess.run(install, cwd=ROOT, env=env, check=False).returncode != 0:
        subprocess.run([apt, "update", "-q"], cwd=ROOT, env=env, check=True)
        subprocess.run(install, cwd=ROOT, env=env, check=True)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def ensure_postgres() -> None:
    """Every database test runs on PostgreSQL too: start this machine's cluster when it is
    installed but not running (Debian's pg_ctlcluster), else the tests say what is missing."""
    if _listening(5432):
        return
    control = shutil.which("pg_ctlcluster")
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if control is None or not versions:
        print("PostgreSQL is not running and cannot be started here: its tests will say so")
        return
    start = [control, "--skip-systemctl-redirect", versions[-1].name, "main", "start"]
    print("+", " ".join(start), flush=True)
    subprocess.run(start, check=False)
    for _ in range(30):
        if _listening(5432):
            return
        time.sleep(1)


def ensure_rabbitmq() -> None:
    """The task queue's tests run workers against this machine's RabbitMQ: start it when it
    is installed but not running, else those tests say what is missing."""
    if _listening(5672):
        return
    server = shutil.which("rabbitmq-server")
    if server is None:
        print("RabbitMQ is not running and cannot be started here: its tests will say so")
        return
    print("+", server, "-detached", flush=True)
    subprocess.run([server, "-detached"], check=False)
    for _ in range(60):
        if _listening(5672):
            return
        time.sleep(1)


def test(extra: list[str]) -> None:
    install_js_clients()
    install_browser()
    ensure_postgres()
    ensure_rabbitmq()
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(BIN / "python", "tests/check_layers.py")
    # The load tests first and alone: fifty clients and two served processes need the cores
    # and the disk to themselves. After the suite the disk is still writing out its databases
    # (and PostgreSQL checkpointing the ones it dropped) for minutes, and every booking's
    # commit waited behind that (pytest exits 5 when `extra` picked none of them).
    print("+ pytest -m load", *extra, flush=True)
    loaded = subprocess.run([str(BIN / "pytest"), "-m", "load", *extra], cwd=ROOT)
    if loaded.returncode not in (0, 5):
        raise subprocess.CalledProcessError(loaded.returncode, "pytest -m load")
    _run(BIN / "pytest", "-n", "2", "-m", "not load", *extra)
    # The OpenAPI document against a live server (after the tests: it needs the port alone).
    schemathesis = ensure_contract_venv()
    for database in ("sqlite", "postgresql"):
        _run(
            BIN / "python",
            "tests/contract.py",
            "--schemathesis",
            schemathesis,
            "--database",
            database,
        )


COMMANDS = {"demo": demo, "test": test}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(COMMANDS)}}} [args...]")
    ensure_venv()
    try:
        COMMANDS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as failed:
        sys.exit(failed.returncode)


if __name__ == "__main__":
    main()
