"""ipywidgets panels that drive packaging, promotion, deployment and drift from a notebook.

>>> jupyter_mlops.panel()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ._panel import TABS, Panel


def panel(namespace: MutableMapping[str, Any] | None = None, *, tab: str = "runs") -> Panel:
    """The panel for this project: Runs, Models, Deployments and Drift tabs.

    ``namespace`` is where Package and Drift find variables (default: the notebook's).

    >>> jupyter_mlops.panel(tab="models")  # doctest: +SKIP
    """
    if namespace is None:
        from IPython import get_ipython

        shell = get_ipython()
        namespace = shell.user_ns if shell is not None else None
    return Panel(namespace, tab=tab)


__all__ = ["TABS", "Panel", "panel"]
