"""Accessibility checks for the browser tests: axe-core over a page (through
axe-playwright-python, which bundles axe-core), a full-page screenshot of it, and
what a keyboard user sees of focus.

Screenshots go to `screenshots/` at the project root (git-ignored), so a reviewer
can look at each page instead of reading about it."""

import os
from pathlib import Path

from django.conf import settings

# Customer pages at a phone's width and a laptop's.
WIDTHS = (390, 1280)
# What fails a test: axe's "serious" and "critical" findings. To list the others too,
# AMANAH_AXE_IMPACTS=minor,moderate,serious,critical.
FAILING_IMPACTS = set(
    os.environ.get("AMANAH_AXE_IMPACTS", "serious,critical").split(",")
)
SCREENSHOTS = Path(settings.BASE_DIR) / "screenshots"


def axe_violations(page, name: str) -> list[tuple[str, str, str]]:
    """Run axe-core over `page`: for each failing violation, each element
    that breaks it, (rule, element's CSS selector, `name`)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        (
            f"{violation['id']} ({violation['impact']}): {violation['help']}",
            " ".join(map(str, node["target"])),
            name,
        )
        for violation in results.response["violations"]
        if violation["impact"] in FAILING_IMPACTS
        for node in violation["nodes"]
    ]


def screenshot(page, *parts: str) -> Path:
    """A full-page screenshot at screenshots/<parts...>.png."""
    path = SCREENSHOTS.joinpath(*parts[:-1], f"{parts[-1]}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page, name: str, *shot: str) -> list[tuple[str, str, str]]:
    """Screenshot the page, then axe it: its failing violations."""
    page.wait_for_load_state("load")
    screenshot(page, *shot)
    return axe_violations(page, name)


def report(violations: list[tuple[str, str, str]]) -> str:
    """The violations by rule, then element, with the pages it was found on."""
    pages: dict[str, dict[str, list[str]]] = {}
    for rule, target, name in violations:
        pages.setdefault(rule, {}).setdefault(target, []).append(name)
    lines = ["accessibility violations (rule, element: pages):"]
    for rule, targets in pages.items():
        lines.append(rule)
        lines.extend(
            f"  {target}: {', '.join(names)}" for target, names in targets.items()
        )
    return "\n".join(lines)


# What the focused element shows: an outline or a box shadow (the focus ring).
_FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== "none";
  return {
    tag: el.tagName.toLowerCase(),
    label:
      el.getAttribute("aria-label") || el.name || el.textContent.trim().slice(0, 40),
    visible: Boolean(outline || shadow),
  };
}"""


def focused(page) -> dict | None:
    """The focused element (tag, label) and whether its focus ring shows."""
    return page.evaluate(_FOCUS_RING)


def tab_to(page, matches, limit: int = 60) -> list[dict]:
    """Press Tab until the focused element satisfies `matches` (a JavaScript
    predicate over `document.activeElement`, as a string); every element passed
    through, the last one included. Fails if it is not reached in `limit` presses."""
    passed = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        element = focused(page)
        if element is not None:
            passed.append(element)
        if page.evaluate(f"(el => {matches})(document.activeElement)"):
            return passed
    raise AssertionError(f"Tab never reached {matches!r}; passed {passed}")


def without_focus_ring(passed: list[dict]) -> list[dict]:
    return [element for element in passed if not element["visible"]]
