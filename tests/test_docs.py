"""The docs are checked like code: every relative link resolves, the README
stays short and keeps CI's test command, DECISIONS.md cites code by name, and
the state diagram in docs/architecture.md is the engine's state table, so
neither can fall behind the other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queuectl_tui.engine import State
from queuectl_tui.engine.states import MOVES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DECISIONS = ROOT / "DECISIONS.md"
PAGES = [README, DECISIONS, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 400

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)
EDGE = re.compile(r"^\s*(\w+)\s*-->\s*(\w+)\b", re.M)


def prose(text: str) -> str:
    """The text outside fenced code blocks, where a link is a link."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped,
    spaces made hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page."""
    return {slug(h) for h in HEADING.findall(prose(page.read_text(encoding="utf-8")))}


def relative_links(page: Path) -> list[str]:
    """The links of a page that point inside the repository."""
    links = LINK.findall(prose(page.read_text(encoding="utf-8")))
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_cited_test_files_exist() -> None:
    """A guarantee or decision names the tests that hold it; a moved test file
    must take its citations along."""
    stale = sorted({cited for page in PAGES
                    for cited in re.findall(r"tests/[\w/*.]+\.py", page.read_text(encoding="utf-8"))
                    if not any(ROOT.glob(cited))})
    assert not stale, f"cited test files that do not exist: {stale}"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_readme_test_command_is_what_ci_runs() -> None:
    """A newcomer who follows the README runs what CI runs."""
    readme = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e '.[test]'" in readme
    assert re.search(r"pip install (--quiet )?-e '\.\[test\]'", ci)
    assert re.search(r"^pytest -q$", ci, re.M)
    assert "pytest -q" in readme


def test_decisions_cite_code_by_name_not_line() -> None:
    """Line numbers go stale with the next edit; module and function names do not."""
    cited = re.findall(r"\w+\.py:\d+|`:\d+(?:-\d+)?`", DECISIONS.read_text(encoding="utf-8"))
    assert not cited, f"DECISIONS.md cites lines: {cited}"


def diagram_moves(text: str) -> dict[str, set[str]]:
    """The edges of docs/architecture.md's state diagram, entry points ([*]) left out."""
    blocks = re.findall(r"^```mermaid\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) == 1, "docs/architecture.md should hold one mermaid state diagram"
    assert blocks[0].lstrip().startswith("stateDiagram-v2")
    moves: dict[str, set[str]] = {}
    for source, target in EDGE.findall(blocks[0]):
        moves.setdefault(source, set()).add(target)
    return moves


def test_state_diagram_is_the_state_table() -> None:
    drawn = diagram_moves((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    table = {str(source): {str(target) for target in targets}
             for source, targets in MOVES.items()}
    assert drawn == table


def test_state_diagram_names_every_state() -> None:
    """A state the table never moves into or out of would be missing from both."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawn = set(diagram_moves(text))
    drawn |= {t for targets in diagram_moves(text).values() for t in targets}
    assert drawn == {str(state) for state in State}
