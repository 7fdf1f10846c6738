"""
Sphinx configuration of the routilux documentation (MyST markdown pages, autodoc API).
"""

from __future__ import annotations

import glob
import os
import re
import sys
from typing import Any


project = "routilux"
author = "the routilux developers"
copyright = "the routilux developers"  # Sphinx reads this name

# docs/_ext/routilux_docs.py: the {flow} picture and the routine tables, drawn from the code.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.graphviz",
    "routilux_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", ".venv", "**/.routilux"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Attributes are documented twice (Napoleon section and `#:` comments): render the section as
# fields so that Sphinx does not see duplicate object descriptions.
napoleon_use_ivar = True
html_theme = "furo"
html_title = "routilux"
html_static_path = ["_static"]
html_css_files = ["routilux.css"]
# Flow pictures: SVG drawn by Graphviz's dot at build time (the graphviz system package).
graphviz_output_format = "svg"
# Docstrings name many types that are only imported for annotations; do not chase them.
nitpicky = False
suppress_warnings = ["myst.xref_missing"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_TOC_ENTRY = re.compile(r"^(?P<name>[\w./*-]+)\s*$")


def _drop_missing_toc_entries(app: Any, docname: str, source: list[str]) -> None:
    # Some pages (routines/*, guarantees, serialization...) are written by other people
    # and may not exist yet in a checkout: list them in the toctree anyway and drop the
    # entries that match no file, so the build stays warning-free either way.
    if docname != "index":
        return
    out: list[str] = []
    in_toc = False
    for line in source[0].splitlines():
        if line.startswith("```{toctree}"):
            in_toc = True
        elif line.startswith("```"):
            in_toc = False
        match = _TOC_ENTRY.match(line) if in_toc and not line.startswith(":") else None
        if match:
            pattern = os.path.join(_HERE, match.group("name") + ".md")
            if not glob.glob(pattern):
                continue
        out.append(line)
    source[0] = "\n".join(out) + "\n"


def setup(app: Any) -> None:
    """
    Register the toctree filter.
    """
    app.connect("source-read", _drop_missing_toc_entries)
