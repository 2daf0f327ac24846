"""Every link in the Markdown pages leads somewhere: a file of the repository, and a heading
of it when the link names one (``page.md#a-heading``), as GitHub renders the anchors.

The project has no published address yet, so no page may send a reader to one: a link into
the repository is relative, and a notebook installs the package from a wheel, not a URL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    p
    for p in [*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("*/*/*.md")]
    if ".venv" not in p.parts
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchor for each heading: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # an address outside the repository
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to what does not exist: {broken}"


def test_no_page_or_notebook_points_at_an_unpublished_address() -> None:
    files = [*PAGES, *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("docs/solutions/*.ipynb")]
    unpublished = re.compile(r"github(\.com)?/tinyfcn/tinyfcn")
    assert not [f.name for f in files if unpublished.search(f.read_text(encoding="utf-8"))]
