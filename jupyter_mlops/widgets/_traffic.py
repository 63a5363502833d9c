"""The Deployments tab's traffic editor: a share in 1 % steps (slider or typed), the split it
would make, and Apply then Confirm before production traffic moves.

Moving the slider or typing a value changes nothing but the pending split shown next to it;
only Confirm calls the service, with the split the question named.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets

from ..exceptions import MlopsError
from ..serving.canary import stable_version
from ..serving.manager import Deployment
from ._context import row

_ERROR = "color:#cf222e"
_MUTED = "color:var(--jp-ui-font-color2)"


def percents(weights: dict[str, float]) -> dict[str, int]:
    return {v: round(w * 100) for v, w in weights.items()}


def split_text(split: dict[str, int]) -> str:
    """``v1 90% / v3 10%``: the heaviest version first."""
    ordered = sorted(split.items(), key=lambda x: (-x[1], x[0]))
    return " / ".join(f"v{v} {w}%" for v, w in ordered)


def proposed_split(d: Deployment, version: str, share: int) -> dict[str, int]:
    """What ``set_canary`` (or, at 100 %, ``switch``) would make of ``d``'s traffic."""
    if share >= 100:
        return {version: 100}
    stable = stable_version(d, version)  # says why when nothing else can take the rest
    return {stable: 100 - share, version: share} if share > 0 else {stable: 100}


@dataclass(frozen=True)
class _Asked:
    deployment: str
    version: str
    share: int
    split: dict[str, int]


class TrafficEditor:
    """``apply(deployment, version, share)`` runs only after Apply, then Confirm."""

    def __init__(self, apply: Callable[[str, str, int], None]) -> None:
        self._apply = apply
        self._deployment: Deployment | None = None
        self._version: str | None = None
        self._key: object = None
        self._asked: _Asked | None = None
        self._syncing = False
        self.share = widgets.IntSlider(
            value=0,
            min=0,
            max=100,
            step=1,
            description="share",
            readout=False,
            continuous_update=True,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="260px"),
        )
        self.typed = widgets.IntText(
            value=0,
            description="%",
            tooltip="the selected version's share of the traffic, 0 to 100",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="90px"),
        )
        self.note = widgets.HTML(layout=widgets.Layout(margin="0 8px"))
        self.apply_button = widgets.Button(
            description="Apply…", icon="sliders", tooltip="review the new split, then confirm"
        )
        self.question = widgets.HTML()
        self.confirm_button = widgets.Button(
            description="Confirm", button_style="warning", icon="check"
        )
        self.cancel_button = widgets.Button(description="Cancel", icon="times")
        # the question and its answers in a box of their own, under the share they ask about
        self.confirm_box = widgets.VBox(
            [self.question, row([self.confirm_button, self.cancel_button])],
            layout=widgets.Layout(
                display="none",
                border="1px solid var(--jp-warn-color1)",
                padding="4px 8px",
                margin="4px 0",
                width="fit-content",
            ),
        )
        self.confirm_box.add_class("jp-mlops-widget-traffic-confirm")
        self.share.observe(self._on_slider, "value")
        self.typed.observe(self._on_typed, "value")
        self.apply_button.on_click(lambda _: self.ask())
        self.confirm_button.on_click(lambda _: self.confirm())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.controls = [self.share, self.typed, self.apply_button, self.confirm_button]
        self.widget = widgets.VBox(
            # Apply before the note, so it stays put while the note's length changes
            [row([self.share, self.typed, self.apply_button, self.note]), self.confirm_box]
        )

    # state shown ---------------------------------------------------------------------------

    @property
    def asking(self) -> bool:
        return self._asked is not None

    def show(self, d: Deployment | None, version: str | None) -> None:
        """The selected deployment and version. A pending share survives a refresh that found
        the same traffic; a new selection or traffic that changed meanwhile resets it."""
        key = (d.id, version, tuple(sorted(d.weights.items()))) if d and version else None
        self._deployment, self._version = d, version
        self.share.description = f"v{version} share" if d and version else "share"
        if key != self._key:
            self._key = key
            self._hide_question()
            current = percents(d.weights).get(version, 0) if d and version else 0
            self._set_share(current)
        self._show_note()

    def _set_share(self, value: int) -> None:
        self._syncing = True
        try:
            self.share.value = value
            self.typed.value = value
        finally:
            self._syncing = False

    def _current(self) -> dict[str, int]:
        return percents(self._deployment.weights) if self._deployment else {}

    def _proposal(self) -> dict[str, int]:
        """The split the pending share makes; raises with what to fix."""
        from ..exceptions import UsageError

        if self._deployment is None:
            raise UsageError("pick a running deployment first")
        if self._version is None:
            raise UsageError("pick the canary version first")
        typed = self.typed.value
        if not 0 <= typed <= 100:
            raise UsageError(
                f"traffic share {typed}%: type a whole percent from 0 to 100 "
                f"(the share v{self._version} gets; 100 sends it all traffic)"
            )
        return proposed_split(self._deployment, self._version, self.share.value)

    def _show_note(self) -> None:
        if self._deployment is None or self._version is None:
            self.note.value = ""
            return
        try:
            split = self._proposal()
        except MlopsError as err:
            self.note.value = self._html(str(err), _ERROR, "error")
            return
        now = split_text(self._current())
        if split == self._current():
            self.note.value = self._html(f"now {now}", _MUTED, "pending")
        else:
            self.note.value = self._html(
                f"pending {split_text(split)}", "font-weight:bold", "pending"
            ) + self._html(f" (now {now}): Apply to review", _MUTED, "now")

    @staticmethod
    def _html(text: str, style: str, kind: str) -> str:
        return (
            f'<span class="jp-mlops-widget-traffic-{kind}" style="{style}">'
            f"{html.escape(text)}</span>"
        )

    def _on_slider(self, change: dict[str, object]) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.typed.value = change["new"]
        finally:
            self._syncing = False
        self._hide_question()
        self._show_note()

    def _on_typed(self, change: dict[str, object]) -> None:
        if self._syncing:
            return
        value = int(change["new"])  # type: ignore[call-overload]
        if 0 <= value <= 100:
            self._syncing = True
            try:
                self.share.value = value
            finally:
                self._syncing = False
        self._hide_question()
        self._show_note()

    # Apply, Confirm, Cancel ----------------------------------------------------------------

    def ask(self) -> None:
        """Apply: the question that Confirm answers, or why there is nothing to apply."""
        try:
            split = self._proposal()
        except MlopsError as err:
            self._hide_question()
            self.note.value = self._html(str(err), _ERROR, "error")
            return
        d, version = self._deployment, self._version
        assert d is not None and version is not None  # _proposal checked both
        if split == self._current():
            self._hide_question()
            self.note.value = self._html(
                f"nothing to apply: the traffic is already {split_text(split)}", _MUTED, "pending"
            )
            return
        self._asked = _Asked(d.id, version, self.share.value, split)
        self.question.value = (
            f'<span class="jp-mlops-widget-traffic-question">Move the production traffic of '
            f"<b>{html.escape(d.id)}</b> from {html.escape(split_text(self._current()))} to "
            f"<b>{html.escape(split_text(split))}</b>?</span>"
        )
        self.confirm_box.layout.display = ""

    def confirm(self) -> None:
        asked = self._asked
        self._hide_question()
        if asked is not None:
            self._apply(asked.deployment, asked.version, asked.share)

    def cancel(self) -> None:
        self._hide_question()
        d, version = self._deployment, self._version
        self._set_share(percents(d.weights).get(version, 0) if d and version else 0)
        self._show_note()

    def _hide_question(self) -> None:
        self._asked = None
        self.confirm_box.layout.display = "none"
        self.question.value = ""
