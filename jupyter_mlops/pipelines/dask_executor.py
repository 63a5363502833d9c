"""Step notebooks executed on a ``dask.distributed`` cluster.

Each step is one Dask task that starts a kernel on a worker, runs the notebook with
papermill and sends the executed notebook back; the runner records it exactly as it records
a local step. Workers are separate processes (often separate hosts), so the task carries the
step's whole environment: its run id, the tracking and registry URIs, the artifact root and
thread counts fitted to the worker's own cores. Workers need the project directory at the
same path (a shared filesystem) and the same Python environment.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import MlopsError
from .executor import StepFailure, execute_step_notebook
from .executors import StepTask, thread_env

if TYPE_CHECKING:
    from distributed import Client

INSTALL_HINT = "the dask executor needs dask.distributed: pip install 'jupyter-mlops[dask]'"
CONNECT_TIMEOUT_S = 10


def store_env(task: StepTask) -> dict[str, str]:
    """What a local kernel inherits from this process, stated explicitly for a worker."""
    settings = task.settings
    return {
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.registry_uri,
        "JUPYTER_MLOPS_ARTIFACT_ROOT": str(settings.artifact_root),
    }


def run_on_worker(
    template_name: str,
    template_text: str,
    output_path: str,
    parameters: dict[str, Any],
    cwd: str,
    env: dict[str, str],
    kernel_name: str | None,
    concurrent: int,
) -> tuple[StepFailure | None, str | None]:
    """The Dask task: execute one notebook on this worker; (failure, executed notebook)."""
    import socket

    if not Path(cwd).is_dir():
        host = socket.gethostname()
        return (
            StepFailure(
                f"the project directory {cwd} does not exist on Dask worker host {host}; "
                "workers need the project on a shared filesystem at the same path"
            ),
            None,
        )
    # the template's name is kept: papermill and the kernel see the same file name
    with tempfile.TemporaryDirectory(prefix="mlops-step-") as tmp:
        template = Path(tmp) / template_name
        template.write_text(template_text, encoding="utf-8")
        output = Path(tmp) / "executed" / template_name
        failure = execute_step_notebook(
            template,
            output,
            parameters,
            cwd=Path(cwd),
            env={**thread_env(concurrent), **env},
            kernel_name=kernel_name,
        )
        if not output.is_file():
            return failure, None
        return failure, _restore_paths(output, env, output_path)


def _restore_paths(output: Path, env: dict[str, str], output_path: str) -> str:
    """The executed notebook as text, naming the paths the runner's host knows it by."""
    import nbformat

    from .executor import STEP_ENV_NOTEBOOK

    nb = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    papermill_meta = nb.metadata.get("papermill")
    if papermill_meta is not None:
        papermill_meta["input_path"] = env.get(STEP_ENV_NOTEBOOK, papermill_meta["input_path"])
        papermill_meta["output_path"] = output_path
    return str(nbformat.writes(nb))  # type: ignore[no-untyped-call]


class DaskExecutor:
    """Runs steps as tasks of the Dask cluster behind ``address``."""

    name = "dask"

    def __init__(self, client: Client, address: str):
        self.client = client
        self.address = address

    @classmethod
    def connect(cls, address: str, timeout: float = CONNECT_TIMEOUT_S) -> DaskExecutor:
        """Connect to the scheduler; a clear error when it cannot be reached."""
        try:
            from distributed import Client
        except ImportError:
            raise MlopsError(INSTALL_HINT) from None
        try:
            client = Client(address, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as err:
            raise MlopsError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                f"({type(err).__name__}); start one with `dask scheduler` and "
                "`dask worker ADDRESS`, or check --scheduler"
            ) from None
        except (ValueError, TypeError) as err:
            raise MlopsError(f"--scheduler {address!r} is not a Dask address: {err}") from None
        return cls(client, address)

    def _workers(self) -> list[dict[str, Any]]:
        return list(self.client.scheduler_info(n_workers=-1)["workers"].values())

    def default_parallel(self) -> int:
        """One step per worker thread of the cluster as it is now."""
        return max(1, sum(int(w.get("nthreads", 1)) for w in self._workers()))

    def thread_env(self, parallel: int) -> dict[str, str]:
        # fitted on each worker to its own cores (see run_on_worker)
        return {}

    def _kernels_per_host(self, parallel: int) -> int:
        """How many step kernels may share one host's cores at once."""
        per_host: Counter[str] = Counter()
        for worker in self._workers():
            per_host[str(worker.get("host", ""))] += int(worker.get("nthreads", 1))
        busiest = max(per_host.values(), default=1)
        return max(1, min(parallel, busiest))

    def run(self, task: StepTask, parallel: int) -> StepFailure | None:
        future = self.client.submit(
            run_on_worker,
            task.template.name,
            task.template.read_text(encoding="utf-8"),
            str(task.output),
            task.parameters,
            str(task.cwd),
            {**store_env(task), **task.env},
            task.kernel_name,
            self._kernels_per_host(parallel),
            pure=False,
            key=f"mlops-step-{task.env.get('JUPYTER_MLOPS_SESSION_RUN_ID', os.getpid())}",
        )
        try:
            failure, text = future.result()
        except Exception as err:  # a worker that died, a cluster that went away
            name = type(err).__name__
            return StepFailure(
                f"the Dask task failed on the cluster at {self.address}: {name}: {err}",
                ename=name,
                evalue=str(err)[:1000],
            )
        if text is not None:
            task.output.parent.mkdir(parents=True, exist_ok=True)
            task.output.write_text(text, encoding="utf-8")
        return failure

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
