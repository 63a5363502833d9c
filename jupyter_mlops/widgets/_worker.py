"""Long work off the kernel's main thread: a moving bar while it runs, then its result or its
error as a message in the tab, never a traceback."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    return value is the success message. A quiet job (a background refresh) shows no bar
    and no "working" message; a user's job that comes while one runs waits for it, then
    runs. ``wait()`` blocks until every job ended (tests).

    >>> worker.run("promoting lin v2", job, lambda r: f"moved to v{r}")  # doctest: +SKIP
    True
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
        #: guards the three fields below and the controls' state: a job that ends and a click
        #: that comes meanwhile see each other whole
        self._lock = threading.Lock()
        self._running: str | None = None  # "quiet", "user" or None
        self._queued: _Job | None = None  # a user's job waiting for a quiet one to end

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
        """Start ``job``, or queue a user's job behind a quiet one that runs.

        False (and nothing started) for a quiet job while any job runs (the next refresh
        comes soon enough), and for a user's job while another user's job runs or waits.
        """
        with self._lock:
            if self._running is None:
                self._running = "quiet" if quiet else "user"
                self._idle.clear()
                start = True
            elif quiet:
                return False
            elif self._running == "quiet" and self._queued is None:
                self._queued = _Job(label, job, show)
                start = False
            else:
                self.say("still working on the previous request; try again when it ends")
                return False
            if not quiet:
                # under the lock: a job ending meanwhile cannot enable them again too early
                self._set_controls(True)
                self.progress.layout.display = ""
                self.say(f"{label}…")
        if start:
            thread = threading.Thread(
                target=self._execute,
                args=(_Job(label, job, show), quiet),
                name=f"mlops-panel {label}",
                daemon=True,
            )
            thread.start()
        return True

    def _execute(self, job: _Job, quiet: bool) -> None:
        while True:
            text, kind = self._outcome(job, quiet)
            with self._lock:
                after, self._queued = self._queued, None
                if after is None:
                    if text is not None:
                        self.say(text, kind)
                    elif not quiet:
                        self.say("")
                    if not quiet:
                        self.progress.layout.display = "none"
                        self._set_controls(False)
                    self._running = None
                    self._idle.set()
                    return
                # a user's job waited for this quiet one: it runs now, on this thread, and
                # its outcome is the one shown; its controls stay disabled meanwhile
                self._running = "user"
            job, quiet = after, False

    def _outcome(self, job: _Job, quiet: bool) -> tuple[str | None, str]:
        """Run the job (with the moving bar unless quiet): its message and kind."""
        ticking = threading.Event()
        ticker = None
        if not quiet:
            ticker = threading.Thread(target=self._tick, args=(job.label, ticking), daemon=True)
            ticker.start()
        try:
            result = job.call()
            text, kind = (job.show(result) if job.show is not None else None), "ok"
        except BaseException as err:  # shown in the tab; the kernel never sees a traceback
            text, kind = error_text(err), "error"
        # the ticker stops before the outcome is shown, so it cannot overwrite it
        ticking.set()
        if ticker is not None:
            ticker.join()
        return text, kind

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
        """Block until the current job, and a job queued behind it, ended."""
        if not self._idle.wait(timeout):
            raise TimeoutError(f"the panel's job did not end within {timeout:g} s")


@dataclass(frozen=True)
class _Job:
    label: str
    call: Callable[[], Any]
    show: Callable[[Any], str | None] | None
