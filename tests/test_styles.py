"""Every text colour of the pages' style sheet is readable (WCAG AA, 4.5:1): against its own
background where the rule sets one, else against both the page's and a card's (issue 19:
the green "aanbevolen" label had 4.37:1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parent.parent / "api/static/fieldplan.css"
RULE = re.compile(r"([^{}]+)\{([^}]*)\}")
PAGE, CARD = "#f4f6f8", "#ffffff"


def luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        x = channel / 255
        return x / 12.92 if x <= 0.03928 else float(((x + 0.055) / 1.055) ** 2.4)

    if len(colour) == 4:  # #abc
        colour = "#" + "".join(c * 2 for c in colour[1:])
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _background(body: str) -> str | None:
    found = re.search(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})\b", body)
    return found.group(1) if found else None


def text_colours() -> list[tuple[str, str, list[str]]]:
    rules = [(selector.strip(), body) for selector, body in RULE.findall(CSS.read_text())]
    # A rule inside a container with a background of its own ("header a") sits on that one.
    containers = {sel: bg for sel, body in rules if (bg := _background(body)) is not None}
    found = []
    for selector, body in rules:
        colour = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})\b", body)
        if colour is None:
            continue
        own = _background(body) or containers.get(selector.split()[0])
        found.append((selector, colour.group(1), [own] if own else [PAGE, CARD]))
    return found


def test_the_sheet_has_text_colours_to_check() -> None:
    assert len(text_colours()) >= 8


@pytest.mark.parametrize(("selector", "colour", "behind"), text_colours())
def test_text_is_readable_on_what_it_sits_on(selector: str, colour: str, behind: list[str]) -> None:
    for background in behind:
        assert contrast(colour, background) >= 4.5, (selector, colour, background)
