"""`jupyter mlops deploy` of a version in the embedded store takes the fast path: no MLflow
import, the ONNX file linked, the same version and file MLflow would give."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.exceptions import NotFoundError
from jupyter_mlops.serving import manager
from jupyter_mlops.serving.follow import download_version
from jupyter_mlops.serving.local_registry import local_onnx

pytestmark = pytest.mark.slow

_CLI = """
import json, sys
from jupyter_mlops.cli import main
try:
    main(["deploy", "lin@champion", "--name", "quick"])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "mlflow": "mlflow" in sys.modules}))
"""


def test_cli_deploy_of_a_local_version_does_not_import_mlflow(registry: Settings) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _CLI], cwd=registry.project_dir, capture_output=True, text=True,
        timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )  # fmt: skip
    try:
        result = json.loads(ran.stdout.strip().splitlines()[-1])
        assert result == {"code": 0, "mlflow": False}, ran.stderr
        d = manager.get_deployment("quick", settings=registry)
        assert d.status == "running" and d.weights == {"1": 1.0}
        body = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]}).encode()
        request = urllib.request.Request(
            f"{d.url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["X-Model-Version"] == "1"
        _, root, artifact = local_onnx(registry, "lin", "champion", None) or ("", Path(), Path())
        served = registry.state_dir / "deployments" / "quick" / "versions" / "1"
        linked = served / artifact.relative_to(root)
        assert linked.stat().st_ino == artifact.stat().st_ino, "linked, not copied"
        # the whole model directory, as MLflow downloads it: weights may sit beside the file
        assert sorted(p.relative_to(served) for p in served.rglob("*")) == sorted(
            p.relative_to(root) for p in root.rglob("*")
        )
    finally:
        if (registry.state_dir / "deployments" / "quick" / "state.json").exists():
            manager.undeploy("quick", settings=registry)


def test_the_fast_path_finds_what_mlflow_finds(registry: Settings, tmp_path: Path) -> None:
    for alias, version in (("champion", "1"), ("challenger", "2")):
        found = local_onnx(registry, "lin", alias, None)
        assert found is not None and found[0] == version
        by_mlflow = download_version(
            registry.tracking_uri, registry.registry_uri, "lin", version, tmp_path / version
        )
        assert found[2].read_bytes() == by_mlflow.read_bytes()
        assert found[2].relative_to(found[1]) == by_mlflow.relative_to(tmp_path / version)
        assert manager.resolve_version(registry, f"lin@{alias}") == ("lin", version, alias)
    assert local_onnx(registry, "lin", None, "2") == local_onnx(registry, "lin", "challenger", None)


def test_anything_unusual_goes_to_mlflow(registry: Settings) -> None:
    assert local_onnx(registry, "lin", "prod", None) is None
    assert local_onnx(registry, "nope", "champion", None) is None
    assert local_onnx(registry, "lin", None, "9") is None
    team = dataclasses.replace(registry, registry_uri="http://127.0.0.1:5000")
    assert local_onnx(team, "lin", "champion", None) is None
    # and MLflow's answer names what is wrong
    with pytest.raises(NotFoundError, match="model 'lin' has no version 9"):
        manager.deploy("lin/9", settings=registry)
