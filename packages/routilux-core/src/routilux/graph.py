"""
Pictures of flows: Graphviz DOT, Mermaid and images (SVG, PNG), each routine optionally
coloured by its state in a job.

The ``routilux graph`` command, the web page of routilux-ui and the documentation draw with
these functions, so a flow looks the same everywhere:

- :func:`render_dot` and :func:`render_mermaid` return a flow's picture as text;
- :func:`render_image` draws it as SVG or PNG with Graphviz's ``dot`` program (the
  ``graphviz`` system package);
- :func:`routine_states` gives each routine of a job its state, and :data:`STATE_STYLES`
  says how each state is drawn.

The public path of :mod:`routilux.drawing`.

.. versionadded:: 0.10
"""

from __future__ import annotations

from routilux.drawing._images import IMAGE_FORMATS, render_image
from routilux.drawing._pictures import (
    STATE_STYLES,
    FlowLike,
    StateStyle,
    render_dot,
    render_mermaid,
    routine_states,
)


__all__ = [
    "IMAGE_FORMATS",
    "STATE_STYLES",
    "FlowLike",
    "StateStyle",
    "render_dot",
    "render_image",
    "render_mermaid",
    "routine_states",
]
