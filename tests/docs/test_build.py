"""
The documentation site builds with warnings as errors, and draws every flow picture.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.mark.slow
def test_site_builds_with_every_picture(tmp_path: Path, graphviz_dot: str) -> None:
    """`sphinx -W` builds the site; each {flow} or {lifecycle} directive of a page is an SVG
    picture in it."""
    out = tmp_path / "html"
    sphinx = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    proc = subprocess.run(
        [*sphinx, "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=50,  # a whole Sphinx build (13 s here), not a wait
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    # Furo: the light/dark switch and the search box on every page, long code lines scroll.
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'class="theme-toggle"' in index
    assert '<form class="sidebar-search-container" method="get" action="search.html"' in index
    assert (out / "search.html").is_file()
    assert ".highlight pre { overflow-x: auto; }" in (out / "_static" / "routilux.css").read_text()
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        wanted = len(re.findall(r"^```\{(?:flow|lifecycle)\}", text, re.M))
        html = (out / page.relative_to(DOCS).with_suffix(".html")).read_text(encoding="utf-8")
        drawn = re.findall(r'<object data="([^"]+\.svg)"[^>]*routilux-flow', html)
        assert wanted == len(drawn), page.relative_to(DOCS)
        for image in drawn:
            assert (out / page.relative_to(DOCS).parent / image).read_text().count("<svg")
