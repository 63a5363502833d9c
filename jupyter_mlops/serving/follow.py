"""A deployment of ``name@alias`` that follows the alias when it moves."""

from __future__ import annotations

import threading
from pathlib import Path

from .config_file import read_config, write_config


def download_version(
    tracking_uri: str, registry_uri: str, name: str, version: str, dest: Path
) -> Path:
    """The version's ONNX file, copied under ``dest``; returns its path."""
    import os

    # a progress bar per deployment is noise in a notebook cell
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.artifacts import download_artifacts

    from ..store import set_fluent_uris

    set_fluent_uris(tracking_uri, registry_uri)
    dest.mkdir(parents=True, exist_ok=True)
    local = Path(download_artifacts(f"models:/{name}/{version}", dst_path=str(dest)))
    found = sorted(local.rglob("*.onnx"))
    if not found:
        raise FileNotFoundError(f"no .onnx file in models:/{name}/{version}")
    return found[0]


def follow_alias(config_path: Path, interval: float, stop: threading.Event) -> None:
    """Every ``interval`` seconds: if the alias moved, load its version and send it all traffic."""
    while not stop.wait(interval):
        try:
            config = read_config(config_path)
            follow = config.get("follow") or {}
            if not follow:
                return
            from mlflow import MlflowClient

            client = MlflowClient(follow["tracking_uri"], follow["registry_uri"])
            version = str(
                client.get_model_version_by_alias(config["model"], follow["alias"]).version
            )
            if config["weights"] == {version: 1.0}:
                continue
            if version not in config["versions"]:
                base = config_path.parent
                path = download_version(
                    follow["tracking_uri"], follow["registry_uri"], config["model"], version,
                    base / "versions" / version,
                )  # fmt: skip
                config["versions"][version] = str(path.relative_to(base))
            config["weights"] = {version: 1.0}
            config["generation"] = int(config.get("generation", 0)) + 1
            write_config(config_path, config)
        except Exception:
            continue  # the registry may be briefly unreachable: try again next tick
