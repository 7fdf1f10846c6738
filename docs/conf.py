"""
Sphinx configuration of the routilux documentation (MyST markdown pages, autodoc API).
"""

from __future__ import annotations

import os
import sys


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
