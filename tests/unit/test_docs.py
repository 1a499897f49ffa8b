"""The documentation links only to files inside the repository, and they exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_relative_links_stay_inside_the_repository(document: Path):
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL (http:, https:, mailto:)
        resolved = (document.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name} links outside: {target}"
        assert resolved.exists(), f"{document.name} links to a missing file: {target}"


def test_the_module_map_names_every_module():
    """docs/DESIGN-NOTES.md's map has a line for each module (a new one is not left out)."""
    notes = (ROOT / "docs" / "DESIGN-NOTES.md").read_text()
    layout = notes[notes.index("### Module map"):notes.index("\n## ", notes.index("### Module map"))]
    for folder in ("server", "bridge", "common", "demo"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name != "__init__.py":
                assert f"`{path.name}`" in layout, f"{folder}/{path.name} is not in the module map"
        for package in sorted(p for p in (ROOT / folder).iterdir()
                              if (p / "__init__.py").exists()):
            assert f"`{package.name}/`" in layout, f"{folder}/{package.name}/ is not in the map"
