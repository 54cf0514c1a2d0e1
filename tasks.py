"""Set-up and run fieldplan with nothing but Python 3.11+.

`python3 tasks.py demo` and `python3 tasks.py test` are the two commands of the README. Both
create `.venv` when it is missing (or when pyproject.toml changed since), install the project
into it and then run; so a fresh clone needs no manual step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
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


def test(extra: list[str]) -> None:
    install_js_clients()
    install_browser()
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(BIN / "python", "tests/check_layers.py")
    _run(BIN / "pytest", "-n", "2", *extra)
    # The OpenAPI document against a live server (after the tests: it needs the port alone).
    _run(BIN / "python", "tests/contract.py", "--schemathesis", ensure_contract_venv())


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
