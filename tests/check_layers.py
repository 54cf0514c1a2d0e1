"""Dependencies point inward: api/calendars -> fieldplan -> optimizer; optimizer imports none.

Run by the test command (and as a test); exits non-zero naming each import that points outward.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "optimizer": {"fieldplan", "api", "calendars", "sqlalchemy", "fastapi", "httpx"},
    "fieldplan": {"api", "calendars"},
    "calendars": {"api"},
}


def violations() -> list[str]:
    found = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    if name.split(".")[0] in banned:
                        rel = path.relative_to(ROOT)
                        found.append(f"{rel}:{node.lineno}: {package} must not import {name}")
    return found


if __name__ == "__main__":
    problems = violations()
    print("\n".join(problems) or "layers: dependencies point inward")
    sys.exit(1 if problems else 0)
