"""Long work off the kernel's main thread: a moving bar while it runs, then its result or its
error as a message in the tab, never a traceback."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..exceptions import MlopsError

_COLORS = {"info": "var(--jp-ui-font-color1)", "ok": "#1a7f37", "error": "#cf222e"}


def error_text(err: BaseException) -> str:
    """An MlopsError's own message; anything else as one line naming its type."""
    if isinstance(err, MlopsError):
        return str(err)
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"unexpected {type(err).__name__}: {first}".rstrip(": ")


class Worker:
    """Runs one job at a time on a thread; the notebook stays usable meanwhile.

    ``run(label, job, show)`` calls ``job()`` on the thread, then ``show(result)``, whose
    return value is the success message. ``wait()`` blocks until the job ended (tests).
    """

    def __init__(self) -> None:
        self.progress = widgets.IntProgress(
            value=0,
            min=0,
            max=20,
            bar_style="info",
            layout=widgets.Layout(width="120px", display="none"),
        )
        self.message = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.widget = widgets.HBox(
            [self.progress, self.message], layout=widgets.Layout(align_items="flex-start")
        )
        self.text = ""
        self.failed = False
        #: widgets disabled while a job runs, so a second click cannot start a second job
        self.controls: list[widgets.Widget] = []
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def say(self, text: str, kind: str = "info") -> None:
        self.text = text
        self.failed = kind == "error"
        self.message.value = (
            f'<pre class="jp-mlops-widget-message jp-mlops-widget-{kind}" style="margin:2px 0;'
            f"white-space:pre-wrap;font-size:var(--jp-code-font-size);color:{_COLORS[kind]};"
            f'background:none;border:none">{html.escape(text)}</pre>'
            if text
            else ""
        )

    def run(
        self,
        label: str,
        job: Callable[[], Any],
        show: Callable[[Any], str | None] | None = None,
        *,
        quiet: bool = False,
    ) -> bool:
        """Start ``job``; False (and nothing started) when another job still runs."""
        with self._lock:
            if self.busy:
                if not quiet:
                    self.say("still working on the previous request; try again when it ends")
                return False
            self._idle.clear()
        if not quiet:
            self._set_controls(True)
            self.progress.layout.display = ""
            self.say(f"{label}…")
        thread = threading.Thread(
            target=self._execute,
            args=(label, job, show, quiet),
            name=f"mlops-panel {label}",
            daemon=True,
        )
        thread.start()
        return True

    def _execute(
        self,
        label: str,
        job: Callable[[], Any],
        show: Callable[[Any], str | None] | None,
        quiet: bool,
    ) -> None:
        ticking = threading.Event()
        ticker = None
        if not quiet:
            ticker = threading.Thread(target=self._tick, args=(label, ticking), daemon=True)
            ticker.start()
        try:
            result = job()
            text, kind = (show(result) if show is not None else None), "ok"
        except BaseException as err:  # shown in the tab; the kernel never sees a traceback
            text, kind = error_text(err), "error"
        # the ticker stops before the outcome is shown, so it cannot overwrite it
        ticking.set()
        if ticker is not None:
            ticker.join()
        if text is not None:
            self.say(text, kind)
        elif not quiet:
            self.say("")
        if not quiet:
            self.progress.layout.display = "none"
            self._set_controls(False)
        self._idle.set()

    def _tick(self, label: str, stop: threading.Event) -> None:
        started = time.monotonic()
        while not stop.wait(0.25):
            self.progress.value = (self.progress.value + 1) % (self.progress.max + 1)
            elapsed = time.monotonic() - started
            if elapsed >= 2:
                self.say(f"{label}… {elapsed:.0f} s")

    def _set_controls(self, disabled: bool) -> None:
        for control in self.controls:
            control.disabled = disabled

    def wait(self, timeout: float = 180.0) -> None:
        """Block until the current job ended."""
        if not self._idle.wait(timeout):
            raise TimeoutError(f"the panel's job did not end within {timeout:g} s")
