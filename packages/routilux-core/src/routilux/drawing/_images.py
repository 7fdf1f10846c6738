"""
A flow as an image (SVG or PNG), drawn by Graphviz's ``dot`` program.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from routilux.exceptions import ConfigurationError, GraphvizError, GraphvizNotFoundError

from ._pictures import FlowLike, render_dot


__all__ = ["IMAGE_FORMATS", "render_image"]

IMAGE_FORMATS: tuple[str, ...] = ("svg", "png")
"""The image formats :func:`render_image` draws."""

_PROGRAM = "dot"
_TIMEOUT = 60.0
"""Seconds a picture may take to draw: a flow of a few hundred routines takes well under one."""


def render_image(
    flow: FlowLike, fmt: str = "svg", *, states: Mapping[str, str] | None = None
) -> bytes:
    """
    Draw ``flow`` as an image with Graphviz's ``dot`` program: the picture of
    :func:`render_dot` (with ``states``, each routine coloured by its state).

    Args:
        flow: A flow, or its document.
        fmt: ``"svg"`` or ``"png"`` (:data:`IMAGE_FORMATS`).
        states: Routine id -> state, as for :func:`render_dot`.

    Returns:
        The image's bytes (SVG is UTF-8 text).

    Raises:
        GraphvizNotFoundError: ``dot`` is not on ``PATH``; install the ``graphviz`` system
            package (``apt-get install graphviz``, ``brew install graphviz``, ...).
        GraphvizError: ``dot`` failed; the error carries its exit code and standard error.
        ConfigurationError: ``fmt`` is not an image format, or a state is unknown.
    """
    if fmt not in IMAGE_FORMATS:
        msg = f"cannot draw a flow as {fmt!r}: the image formats are {', '.join(IMAGE_FORMATS)}"
        raise ConfigurationError(msg, name="fmt", value=fmt)
    source = render_dot(flow, states)
    program = shutil.which(_PROGRAM)
    if program is None:
        msg = (
            f"drawing a flow as {fmt.upper()} needs Graphviz's {_PROGRAM!r} program, which is "
            "not on PATH: install the graphviz system package (apt-get install graphviz, "
            "dnf install graphviz or brew install graphviz); the dot and mermaid formats "
            "need nothing"
        )
        raise GraphvizNotFoundError(msg, program=_PROGRAM)
    try:
        proc = subprocess.run(
            [program, f"-T{fmt}"],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        msg = f"{program} did not draw the flow within {_TIMEOUT:g} seconds"
        raise GraphvizError(msg, program=program) from None
    except OSError as exc:
        msg = f"{program} cannot be run: {exc}"
        raise GraphvizError(msg, program=program) from None
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        msg = f"{program} -T{fmt} failed with exit code {proc.returncode}: {stderr}"
        raise GraphvizError(msg, program=program, returncode=proc.returncode, stderr=stderr)
    return proc.stdout
