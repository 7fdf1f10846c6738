"""
The routilux-ui distribution: its public names, version, entry point and packaged files.
"""

from __future__ import annotations

from importlib import metadata, resources

import pytest

import routilux_ui
from routilux.cli import COMMANDS_ENTRY_POINT_GROUP, main


def test_public_names() -> None:
    """The package exports create_app, and its version from the package metadata."""
    assert ["create_app"] == routilux_ui.__all__
    assert metadata.version("routilux-ui") == routilux_ui.__version__
    with pytest.raises(AttributeError):
        _ = routilux_ui.nothing  # type: ignore[attr-defined]


def test_command_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    """`routilux ui` comes through the routilux.commands entry point."""
    (ep,) = [e for e in metadata.entry_points(group=COMMANDS_ENTRY_POINT_GROUP) if e.name == "ui"]
    assert "routilux_ui._cli:register" == ep.value
    with pytest.raises(SystemExit):
        main(["ui", "--help"])
    assert "--read-only" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name",
    [
        "templates/base.html",
        "static/app.js",
        "static/vendor/htmx.min.js",
        "static/vendor/htmx.LICENSE",
        "static/vendor/viz-global.js",
        "static/vendor/viz-js.LICENSE",
        "static/vendor/graphviz.LICENSE",
        "py.typed",
    ],
)
def test_packaged_files(name: str) -> None:
    """The templates, the vendored scripts with their licences, and py.typed are package data."""
    assert resources.files("routilux_ui").joinpath(name).is_file()
