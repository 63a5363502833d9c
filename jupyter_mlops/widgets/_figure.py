"""Plotly figures in the panel.

The figure goes into an Output widget as plotly's own mime bundle
(``application/vnd.plotly.v1+json``), drawn by this package's JupyterLab renderer (plotly.js
loaded when the first figure is drawn; see ``server/plotly_page.py`` for why plotly 5's own
``jupyterlab-plotly`` is kept off the page), so the bundle holds only the figure's JSON,
never plotly.js, and a saved notebook stays small. ``FigureWidget`` is not used: its widget
side is the JupyterLab 3 build of ``jupyterlab-plotly``.
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets

MIME = "application/vnd.plotly.v1+json"
_CONFIG = {"displaylogo": False, "responsive": True}


class FigureView:
    """One figure slot; ``show(fig)`` replaces what it shows."""

    def __init__(self) -> None:
        self.widget = widgets.Output(layout=widgets.Layout(width="100%"))
        self.figure: Any = None

    def show(self, figure: Any) -> None:
        self.figure = figure
        spec = json.loads(figure.to_json())
        spec["config"] = _CONFIG
        title = (spec.get("layout", {}).get("title") or {}).get("text") or "plotly figure"
        bundle = {MIME: spec, "text/plain": f"<{title}>"}
        # set outputs directly: the `with output:` capture is unreliable off the main thread
        self.widget.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    def clear(self) -> None:
        self.figure = None
        self.widget.outputs = ()
