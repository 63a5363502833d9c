"""What every tab shares: the project's settings and the notebook's variables."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings


@dataclass
class PanelContext:
    settings: Settings
    #: the notebook's variables (models, example batches, tables); None outside a kernel
    namespace: MutableMapping[str, Any] | None
    #: this notebook's experiment, when tracking is on in this kernel
    experiment: str | None
    #: what this panel packaged last, for Register
    last: dict[str, Any] = field(default_factory=dict)


def row(children: list[Any]) -> Any:
    """A row of controls that wraps instead of overflowing a narrow notebook."""
    import ipywidgets as widgets

    return widgets.HBox(children, layout=widgets.Layout(flex_flow="row wrap", align_items="center"))


def choose(dropdown: Any, values: list[Any], empty: str, labels: list[str] | None = None) -> None:
    """Offer ``values``: the current choice stays when still offered, else the first is
    chosen; ``empty`` is shown (value None) when there is nothing to pick."""
    current = dropdown.value
    pairs = list(zip(labels or [str(v) for v in values], values, strict=True))
    if [p[1] for p in dropdown.options] != values or not values:
        dropdown.options = pairs or [(empty, None)]
    if values:
        dropdown.value = current if current in values else values[0]
    else:
        dropdown.index = 0  # shows the placeholder instead of a blank box
