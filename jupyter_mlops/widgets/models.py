"""Models tab: registered models with versions, aliases and gate results; Package, Register,
Promote (each gate's result; a refusal lists the reasons) and Rollback."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..packaging.candidates import batch_variables, model_variables
from ..registry.service import (
    ModelInfo,
    PromotionRefused,
    models,
    promote,
    register,
    rollback,
)
from ._context import PanelContext, choose, row
from ._html import table
from ._worker import Worker

_NONE = "(none)"


def _models_table(infos: list[ModelInfo]) -> str:
    rows = []
    for m in infos:
        for v in reversed(m.versions):
            parity = {None: "", True: "passed", False: "FAILED"}[v.parity_passed]
            gates = ", ".join(f"{a}: {g}" for a, g in sorted(v.gates.items()))
            rows.append(
                [
                    m.name,
                    f"v{v.version}",
                    ", ".join(v.aliases),
                    parity,
                    gates,
                    (v.run_id or "")[:12],
                ]
            )
    return table(
        ("model", "version", "aliases", "parity", "gate results", "run"),
        rows,
        empty="no registered models yet: package a model, then register it",
        css_class="jp-mlops-widget-models",
    )


def _labelled(text: str, *items: widgets.Widget) -> widgets.HBox:
    label = widgets.HTML(f"<b>{text}</b>", layout=widgets.Layout(width="80px"))
    return row([label, *items])


class ModelsTab:
    title = "Models"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.worker = Worker()
        self.infos: list[ModelInfo] = []
        self.listing = widgets.HTML()
        small = widgets.Layout(width="230px")
        # package
        self.model_var = widgets.Dropdown(description="variable", layout=small)
        self.example_var = widgets.Dropdown(description="example", layout=small)
        self.reference_var = widgets.Dropdown(description="reference", layout=small)
        self.package_name = widgets.Text(placeholder="name (default: class)", layout=small)
        self.package_button = widgets.Button(description="Package", icon="archive")
        # register
        self.register_uri = widgets.Text(
            placeholder="runs:/… or models:/… (default: the last packaged)",
            layout=widgets.Layout(width="340px"),
        )
        self.register_name = widgets.Text(placeholder="name", layout=small)
        self.register_button = widgets.Button(description="Register", icon="plus")
        # promote / rollback
        self.model = widgets.Dropdown(description="model", layout=small)
        self.version = widgets.Dropdown(description="version", layout=small)
        self.alias = widgets.Combobox(
            value="champion",
            options=["champion", "challenger", "staging"],
            description="alias",
            ensure_option=False,
            layout=small,
        )
        self.reason = widgets.Text(placeholder="reason", layout=widgets.Layout(width="200px"))
        self.force = widgets.Checkbox(
            description="force", indent=False, layout=widgets.Layout(width="70px")
        )
        self.promote_button = widgets.Button(
            description="Promote", button_style="primary", icon="arrow-up"
        )
        self.rollback_button = widgets.Button(
            description="Rollback", button_style="warning", icon="undo"
        )
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.worker.controls = [
            self.package_button,
            self.register_button,
            self.promote_button,
            self.rollback_button,
            self.refresh_button,
        ]
        self.package_button.on_click(lambda _: self.package())
        self.register_button.on_click(lambda _: self.register())
        self.promote_button.on_click(lambda _: self.promote())
        self.rollback_button.on_click(lambda _: self.rollback())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.model.observe(lambda _: self._versions(), "value")
        self.widget = widgets.VBox(
            [
                row([self.refresh_button]),
                self.listing,
                _labelled(
                    "Package",
                    self.model_var,
                    self.example_var,
                    self.reference_var,
                    self.package_name,
                    self.package_button,
                ),
                _labelled("Register", self.register_uri, self.register_name, self.register_button),
                _labelled(
                    "Promote",
                    self.model,
                    self.version,
                    self.alias,
                    self.reason,
                    self.force,
                    self.promote_button,
                    self.rollback_button,
                ),
                self.worker.widget,
            ]
        )

    def _variables(self) -> None:
        namespace = self.ctx.namespace or {}
        choose(self.model_var, model_variables(namespace), "(no model)")
        batches = batch_variables(namespace)
        choose(self.example_var, batches, "(no batch)")
        choose(self.reference_var, [None, *batches], "", [_NONE, *batches])

    def _versions(self) -> None:
        info = next((m for m in self.infos if m.name == self.model.value), None)
        versions = [v.version for v in reversed(info.versions)] if info else []
        choose(self.version, versions, "(none)")

    def _show_models(self, infos: list[ModelInfo]) -> None:
        self.infos = infos
        self.listing.value = _models_table(infos)
        choose(self.model, [m.name for m in infos], "(no model)")
        self._versions()

    def refresh(self) -> None:
        self._variables()
        self.worker.run(
            "loading models", lambda: models(settings=self.ctx.settings), self._show_models
        )

    def package(self) -> None:
        from ..packaging.package import PackagedModel, package

        namespace = self.ctx.namespace or {}
        names = (self.model_var.value, self.example_var.value, self.reference_var.value)
        name = self.package_name.value.strip() or None

        def job() -> PackagedModel:
            model, example, reference = (namespace.get(n) if n else None for n in names)
            if model is None or example is None:
                from ..exceptions import UsageError

                raise UsageError("pick a model variable and an example batch variable first")
            return package(
                model, example, name=name, reference=reference, settings=self.ctx.settings
            )

        def show(packaged: PackagedModel) -> str:
            self.ctx.last["packaged"] = packaged
            self.register_uri.value = packaged.model_uri
            self.register_name.value = packaged.name
            parity = packaged.parity
            return (
                f"packaged {packaged.name}: {packaged.model_uri}\n"
                f"parity: max abs diff {parity['max_abs_diff']:.3g} <= "
                f"{parity['tolerance']:g}; opset {packaged.opset}; {packaged.size_bytes} bytes"
                "\nnext: Register"
            )

        self.worker.run(f"packaging {names[0]}", job, show)

    def register(self) -> None:
        target: Any = self.register_uri.value.strip() or self.ctx.last.get("packaged")
        name = self.register_name.value.strip() or None

        def job() -> tuple[Any, list[ModelInfo]]:
            if target is None:
                from ..exceptions import UsageError

                raise UsageError("nothing packaged in this panel yet: Package, or give a URI")
            version = register(target, name, settings=self.ctx.settings)
            return version, models(settings=self.ctx.settings)

        def show(result: tuple[Any, list[ModelInfo]]) -> str:
            version, infos = result
            self._show_models(infos)
            self.model.value = version.name
            self.version.value = version.version
            return f"registered {version.name} version {version.version} from {version.source}"

        self.worker.run("registering", job, show)

    def promote(self) -> None:
        name, version = self.model.value, self.version.value
        alias, reason, force = self.alias.value.strip(), self.reason.value, self.force.value

        def job() -> tuple[Any, list[ModelInfo]]:
            self._require(name, version)
            try:
                result = promote(
                    name, version, alias, reason, force=force, settings=self.ctx.settings
                )
            except PromotionRefused:
                self._show_models(models(settings=self.ctx.settings))  # shows the refusal
                raise
            return result, models(settings=self.ctx.settings)

        def show(result: tuple[Any, list[ModelInfo]]) -> str:
            self._show_models(result[1])
            return str(result[0].summary())

        self.worker.run(f"promoting {name} v{version} to {alias}", job, show)

    def rollback(self) -> None:
        name, alias, reason = self.model.value, self.alias.value.strip(), self.reason.value

        def job() -> tuple[Any, list[ModelInfo]]:
            self._require(name, "-")
            move = rollback(name, alias, reason, settings=self.ctx.settings)
            return move, models(settings=self.ctx.settings)

        def show(result: tuple[Any, list[ModelInfo]]) -> str:
            move = result[0]
            self._show_models(result[1])
            return f"{name}@{alias} rolled back from v{move.from_version} to v{move.to_version}"

        self.worker.run(f"rolling back {name}@{alias}", job, show)

    @staticmethod
    def _require(name: str | None, version: str | None) -> None:
        if not name or not version:
            from ..exceptions import UsageError

            raise UsageError("pick a registered model and a version first")
