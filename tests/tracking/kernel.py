"""Driving a live kernel from a test: run code, collect what it printed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from jupyter_mlops import store
from tests.conftest import ENV_KEYS, cell_text


def execute(kc: object, code: str, timeout: float = 180, stream: str | None = None) -> str:
    """Run ``code`` in the kernel and return what it printed (only to ``stream`` if given:
    "stdout" or "stderr"); the cell itself must succeed.

    A print can reach the client as several stream messages on a busy machine (the text,
    then its newline), so the pieces are joined before anyone parses them."""
    out: list[str] = []

    def grab(msg: dict) -> None:
        if msg["msg_type"] == "stream" and stream in (None, msg["content"].get("name")):
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, output_hook=grab, timeout=timeout)  # type: ignore[attr-defined]
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


class Kernel:
    """One real kernel that runs a notebook's cells in any order, as a user would."""

    def __init__(self, client: NotebookClient, nb: Any) -> None:
        self.client, self.nb = client, nb

    def run(self, index: int, source: str | None = None) -> str:
        cell = self.nb.cells[index]
        if source is not None:
            cell.source = source
        kc = self.client.kc
        assert kc is not None

        def execute(code: str, **kwargs: Any) -> str:
            # as JupyterLab does: the cell's id in the request's metadata (nbclient sends none)
            content = {
                "code": code,
                "silent": False,
                "store_history": kwargs.get("store_history", True),
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": kwargs.get("stop_on_error", True),
            }
            msg = kc.session.msg("execute_request", content)
            msg["metadata"]["cellId"] = cell.id
            kc.shell_channel.send(msg)
            return str(msg["header"]["msg_id"])

        kc.execute = execute  # type: ignore[method-assign]
        self.client.execute_cell(cell, index)
        return cell_text(cell)


@contextlib.contextmanager
def notebook_kernel(root: Path, cells: list[str], name: str = "nb.ipynb") -> Iterator[Kernel]:
    """A notebook of ``cells`` in project ``root`` (given an empty ``mlops.yaml``) and a real
    kernel in it, with no tracking URI from the test's environment; all undone after."""
    (root / "mlops.yaml").write_text("")
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    for key in ENV_KEYS:
        os.environ.pop(key, None)
    path = root / name
    os.environ["JUPYTER_MLOPS_NOTEBOOK"] = str(path)
    os.chdir(root)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    nbformat.write(nb, path)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(root)}},
    )
    try:
        with client.setup_kernel():
            yield Kernel(client, nb)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        store.forget_clients()
