"""Request capture of real server processes: the byte cap, sampling, a full disk, counted
drops, private files, the JSON-lines files of earlier releases, monitor() on what it wrote."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.exceptions import ConfigError
from jupyter_mlops.monitoring.monitor import monitor
from jupyter_mlops.monitoring.sources import DriftSource, list_sources
from jupyter_mlops.serving import manager
from jupyter_mlops.serving.canary import request_rate
from jupyter_mlops.serving.capture_store import REASONS, read_stats
from tests.serving.conftest import expected

pytestmark = pytest.mark.slow

RNG = np.random.default_rng(7)


@pytest.fixture
def project(registry: Settings) -> Iterator[Callable[[str], Settings]]:
    """Settings of the registry's project with a given ``mlops.yaml``; restored afterwards."""
    config = registry.project_dir / "mlops.yaml"

    def with_yaml(text: str) -> Settings:
        config.write_text(text)
        return load_settings(registry.project_dir)

    yield with_yaml
    config.write_text("")


def post(url: str, rows: np.ndarray) -> None:
    body = json.dumps({"inputs": rows.tolist()}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        answer = json.loads(response.read())
    np.testing.assert_allclose(answer["predictions"]["output"], expected("1", rows), rtol=1e-5)


def metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return str(response.read().decode())


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def accounted(directory: Path, sent: int) -> Callable[[], bool]:
    """Whether each sent request is written (perhaps removed later) or counted as not written."""

    def check() -> bool:
        stats = read_stats(directory)
        unwritten = ("sampled", "queue_full", "disk_full", "write_error")
        return stats["written"] + sum(stats["dropped"][r] for r in unwritten) >= sent

    return check


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def segment_bytes(directory: Path) -> int:
    total = 0
    for path in directory.glob("capture-*.arrows"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue  # removed by the cap since the listing
    return total


def test_capture_stays_under_its_cap_and_counts_what_the_cap_removed(
    project: Callable[[str], Settings],
) -> None:
    settings = project("serving:\n  capture:\n    max_bytes: 200kB\n")
    d = manager.deploy("lin/1", name="capped", settings=settings)
    directory = settings.state_dir / "inference" / "capped"
    try:
        sent = 400
        largest = 0
        for _ in range(sent):  # 64 x 4 inputs and 64 x 3 outputs: 1792 bytes per request
            post(d.url, RNG.random((64, 4), dtype=np.float32))
            largest = max(largest, segment_bytes(directory))
        wait_for(accounted(directory, sent), "the capture writer")
        assert max(largest, segment_bytes(directory)) <= 200_000
        stats = read_stats(directory)
        removed = stats["dropped"]["max_bytes"]
        assert stats["written"] == sent and 0 < removed < sent
        assert {r: n for r, n in stats["dropped"].items() if n} == {"max_bytes": removed}
        log = manager.inference_log(d.id, settings=settings)
        assert len(log) == (sent - removed) * 64
        assert log.attrs["dropped"] == {**dict.fromkeys(REASONS, 0), "max_bytes": removed}
        assert log.attrs["captured"] == sent
        assert f'mlops_capture_dropped_total{{reason="max_bytes"}} {removed}.0' in metrics(d.url)
        assert f"mlops_capture_written_total {sent}.0" in metrics(d.url)
        assert log["f0"].dtype == np.float32
        assert len(list(directory.glob("capture-*.arrows"))) > 1, "segments rotate by size"
    finally:
        manager.undeploy(d.id, settings=settings)
    # the bytes a request takes on disk, against its raw tensors
    per_request = segment_bytes(directory) / (sent - removed)
    assert per_request < 1.5 * 1792
    assert mode(directory) == 0o700
    assert {mode(p) for p in directory.iterdir()} == {0o600}


def test_sampling_keeps_a_share_and_counts_the_rest(project: Callable[[str], Settings]) -> None:
    settings = project("serving:\n  capture:\n    sample_rate: 0.25\n")
    d = manager.deploy("lin/1", name="sampled", settings=settings)
    directory = settings.state_dir / "inference" / "sampled"
    try:
        for _ in range(400):
            post(d.url, RNG.random((1, 4), dtype=np.float32))
        wait_for(accounted(directory, 400), "the capture writer")
        stats = read_stats(directory)
        kept, sampled = stats["written"], stats["dropped"]["sampled"]
        assert kept + sampled == 400 and 50 < kept < 150, stats
        log = manager.inference_log(d.id, settings=settings)
        assert len(log) == kept and log.attrs["dropped"]["sampled"] == sampled
        assert f'mlops_capture_dropped_total{{reason="sampled"}} {sampled}.0' in metrics(d.url)
    finally:
        manager.undeploy(d.id, settings=settings)


def test_capture_paused_live_counts_what_it_did_not_keep(
    registry: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_mlops.cli import main
    from jupyter_mlops.magics import run_line

    d = manager.deploy("lin/1", name="paused", settings=registry)
    directory = registry.state_dir / "inference" / "paused"
    monkeypatch.chdir(registry.project_dir)
    try:
        for _ in range(5):
            post(d.url, RNG.random((1, 4), dtype=np.float32))
        result = CliRunner().invoke(main, ["capture", "paused", "off"])
        assert (result.exit_code, result.output) == (0, "paused: capture paused\n")
        for _ in range(7):
            post(d.url, RNG.random((1, 4), dtype=np.float32))
        assert run_line("capture paused on") == "paused: capture on"
        assert manager.set_capture(d.id, True, settings=registry) is True
        for _ in range(3):
            post(d.url, RNG.random((1, 4), dtype=np.float32))
        wait_for(lambda: read_stats(directory)["written"] == 8, "the capture writer")
        assert read_stats(directory)["dropped"] == {**dict.fromkeys(REASONS, 0), "paused": 7}
        assert len(manager.inference_log(d.id, settings=registry)) == 8
        assert 'mlops_capture_dropped_total{reason="paused"} 7.0' in metrics(d.url)
        # a switch keeps the capture as it was set
        manager.set_capture(d.id, False, settings=registry)
        manager.set_traffic(d.id, {"1": 1}, settings=registry)
        post(d.url, RNG.random((1, 4), dtype=np.float32))
        wait_for(lambda: read_stats(directory)["dropped"]["paused"] == 8, "the pause count")
    finally:
        manager.undeploy(d.id, settings=registry)
    # bad input: a stopped deployment, a deployment without capture, a state that is not one
    with pytest.raises(manager.DeploymentError, match=r"^deployment 'paused' is stopped$"):
        manager.set_capture(d.id, True, settings=registry)
    bare = manager.deploy("lin/1", name="bare", capture=False, settings=registry)
    try:
        result = CliRunner().invoke(main, ["capture", "bare", "on"])
        assert (result.exit_code, result.output) == (
            1,
            "error: deployment 'bare' was started without capture; deploy it again with "
            "capture on to capture its traffic\n",
        )
    finally:
        manager.undeploy(bare.id, settings=registry)
    result = CliRunner().invoke(main, ["capture", "paused", "pause"])
    assert result.exit_code == 2
    assert "Invalid value for '{on|off}': 'pause' is not one of 'on', 'off'." in result.output


def _legacy_line(t: float, rows: list[list[float]]) -> str:
    """A request as releases before Arrow segments wrote it."""
    out = (np.asarray(rows, dtype=np.float32) @ np.zeros((4, 3), np.float32)).tolist()
    entry = {"time": t, "version": "1", "protocol": "mlflow", "latency_ms": 0.05,
             "inputs": {"input": rows}, "outputs": {"output": out}}  # fmt: skip
    return json.dumps(entry, separators=(",", ":")) + "\n"


def test_json_lines_of_earlier_releases_still_read_next_to_segments(registry: Settings) -> None:
    old = registry.state_dir / "inference" / "old-only"
    old.mkdir(parents=True)
    now = time.time()
    (old / "capture-20261101-10.jsonl").write_text(
        _legacy_line(now - 30, [[1, 2, 3, 4], [5, 6, 7, 8]]) + "not json\n"
    )
    log = manager.inference_log("old-only", settings=registry)
    assert log[["f0", "f1", "f2", "f3"]].values.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert list(log.columns[:4]) == ["time", "version", "protocol", "latency_ms"]
    assert log.attrs["dropped"] == dict.fromkeys(REASONS, 0)

    mixed = registry.state_dir / "inference" / "mixed"
    mixed.mkdir(parents=True)
    hour = time.strftime("%Y%m%d-%H", time.gmtime(now - 20))
    (mixed / f"capture-{hour}.jsonl").write_text(_legacy_line(now - 20, [[9, 9, 9, 9]]))
    d = manager.deploy("lin/1", name="mixed", settings=registry)
    try:
        post(d.url, np.array([[1, 1, 1, 1], [2, 2, 2, 2]], np.float32))
        wait_for(accounted(mixed, 1), "the capture writer")
        log = manager.inference_log(d.id, settings=registry)
        assert log[["f0", "f1"]].values.tolist() == [[9, 9], [1, 1], [2, 2]]
        assert list(log.columns[:8]) == ["time", "version", "protocol", "latency_ms",
                                         "f0", "f1", "f2", "f3"]  # fmt: skip
        served = expected("1", np.array([[1, 1, 1, 1], [2, 2, 2, 2]]))[:, 0]
        assert log["out0"].tolist()[1:] == pytest.approx(served.tolist())
        assert isinstance(log["time"].dtype, pd.DatetimeTZDtype)
        assert manager.inference_log(d.id, since=now - 10, settings=registry)["f0"].tolist() == [
            1,
            2,
        ]
        assert request_rate(d.id, 60, settings=registry) == pytest.approx(2 / 60)
        assert DriftSource("traffic", "mixed") in list_sources(None, registry)
    finally:
        manager.undeploy(d.id, settings=registry)


def test_monitor_reads_the_arrow_capture(registry: Settings, tmp_path: Path) -> None:
    client = store.client(registry)
    run_id = client.get_model_version("lin", "1").run_id
    reference = pd.DataFrame(RNG.normal(0, 1, (500, 4)), columns=["a", "b", "c", "d"])
    reference.to_parquet(tmp_path / "reference.parquet")
    client.log_artifact(run_id, str(tmp_path / "reference.parquet"))
    d = manager.deploy("lin/1", name="watched", settings=registry)
    directory = registry.state_dir / "inference" / "watched"
    try:
        for _ in range(6):
            post(d.url, RNG.normal(0, 1, (50, 4)).astype(np.float32))
        wait_for(accounted(directory, 6), "the capture writer")
        assert not list(directory.glob("*.jsonl"))
        result = monitor("watched", "1h", act=False, settings=registry)
        assert (result.rows, result.version, result.triggered) == (300, "1", False)
        assert result.latency_p50_ms is not None and result.latency_p50_ms > 0
    finally:
        manager.undeploy(d.id, settings=registry)


def test_a_full_disk_fails_no_request_and_is_counted(registry: Settings) -> None:
    directory = registry.state_dir / "inference" / "full"
    directory.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs is needed to fill a disk: {mounted.stderr.strip()}")
    try:
        d = manager.deploy("lin/1", name="full", settings=registry)
        try:
            sent = 200
            for _ in range(sent):  # 360 kB of tensors for a 64 kB disk
                post(d.url, RNG.random((64, 4), dtype=np.float32))
            wait_for(accounted(directory, sent), "the capture writer")
            stats = read_stats(directory)
            full = stats["dropped"]["disk_full"]
            assert full > 0 and stats["written"] + full == sent, stats
            assert f'mlops_capture_dropped_total{{reason="disk_full"}} {full}.0' in metrics(d.url)
            log = manager.inference_log(d.id, settings=registry)
            assert len(log) == stats["written"] * 64
            assert log.attrs["dropped"]["disk_full"] == full
            post(d.url, RNG.random((1, 4), dtype=np.float32))  # still answering
        finally:
            manager.undeploy(d.id, settings=registry)
    finally:
        subprocess.run(["umount", str(directory)], check=False)


def test_deployment_files_are_private(registry: Settings) -> None:
    d = manager.deploy("lin/1", name="private", host="0.0.0.0", settings=registry)
    try:
        assert d.token
        post_with = urllib.request.Request(
            f"{d.url}/invocations",
            data=json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"},
        )
        with urllib.request.urlopen(post_with, timeout=10) as response:
            assert response.status == 200
        inference = registry.state_dir / "inference" / "private"
        wait_for(lambda: list(inference.glob("capture-*.arrows")), "a capture segment")
        manager.set_traffic(d.id, {"1": 1}, settings=registry)
    finally:
        manager.undeploy(d.id, settings=registry)
    home = registry.state_dir / "deployments" / "private"
    assert d.token in (home / "state.json").read_text()
    for path in (home / "state.json", home / "deployment.json", home / "server.log"):
        assert mode(path) == 0o600, path
    for folder in (registry.state_dir / "deployments", home, home / "versions", inference):
        assert mode(folder) == 0o700, folder
    assert {mode(p) for p in inference.iterdir()} == {0o600}
    # files an earlier release left readable by all are closed on the next look
    os.chmod(home / "state.json", 0o644)
    os.chmod(home / "deployment.json", 0o644)
    manager.deployments(settings=registry)
    assert (mode(home / "state.json"), mode(home / "deployment.json")) == (0o600, 0o600)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "max_bytes: -1",
            'serving.capture.max_bytes: must be a size above zero in bytes, like 268435456 or "256MB", got -1',
        ),
        (
            "max_bytes: lots",
            "serving.capture.max_bytes: must be a size above zero in bytes, like 268435456 or \"256MB\", got 'lots'",
        ),
        (
            "sample_rate: 1.5",
            "serving.capture.sample_rate: must be a number from 0 to 1 (the share of requests kept), got 1.5",
        ),
        (
            "sample_rate: half",
            "serving.capture.sample_rate: must be a number from 0 to 1 (the share of requests kept), got 'half'",
        ),
        (
            "max_age: soon",
            'serving.capture.max_age: must be a duration above zero, in seconds or like "30m", "12h", "7d", got \'soon\'',
        ),
        (
            "segment_bytes: 1MB\n    max_bytes: 1MB",
            "serving.capture.segment_bytes: must be at most half of max_bytes (500000 bytes), got 1000000",
        ),
        (
            "keep: all",
            "serving.capture: unknown key 'keep' (known: enabled, max_age, max_bytes, queue_bytes, sample_rate, segment_age, segment_bytes)",
        ),
    ],
)
def test_bad_capture_settings_name_the_field(
    project: Callable[[str], Settings], text: str, message: str
) -> None:
    settings = project(f"serving:\n  capture:\n    {text}\n")
    path = settings.project_dir / "mlops.yaml"
    with pytest.raises(ConfigError) as err:
        manager.deploy("lin/1", name="refused", settings=settings)
    assert str(err.value) == f"{path}: {message}"
    assert not (settings.state_dir / "deployments" / "refused").exists()


def test_the_cli_says_what_is_wrong_with_the_settings(
    project: Callable[[str], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_mlops.cli import main

    settings = project("serving:\n  capture:\n    sample_rate: 2\n")
    monkeypatch.chdir(settings.project_dir)
    result = CliRunner().invoke(main, ["deploy", "lin/1", "--name", "refused"])
    assert result.exit_code == 1
    assert result.output == (
        f"error: {settings.project_dir / 'mlops.yaml'}: serving.capture.sample_rate: "
        "must be a number from 0 to 1 (the share of requests kept), got 2\n"
    )


def test_age_limit_and_restart_keep_counting(project: Callable[[str], Settings]) -> None:
    settings = project("serving:\n  capture:\n    max_age: 1\n")
    directory = settings.state_dir / "inference" / "aging"
    d = manager.deploy("lin/1", name="aging", settings=settings)
    try:
        post(d.url, RNG.random((2, 4), dtype=np.float32))
        wait_for(accounted(directory, 1), "the capture writer")
        # segments rotate every max_age / 2; one older than max_age goes at a later flush
        post_until = time.monotonic() + 60
        while read_stats(directory)["dropped"]["max_age"] == 0:
            assert time.monotonic() < post_until, "no segment expired"
            post(d.url, RNG.random((1, 4), dtype=np.float32))
            time.sleep(0.2)
    finally:
        manager.undeploy(d.id, settings=settings)
    before = read_stats(directory)
    again = manager.deploy("lin/1", name="aging", settings=settings)
    try:
        post(again.url, RNG.random((1, 4), dtype=np.float32))
        wait_for(lambda: read_stats(directory)["written"] == before["written"] + 1, "the restart")
        assert read_stats(directory)["dropped"]["max_age"] >= before["dropped"]["max_age"]
    finally:
        manager.undeploy(again.id, settings=settings)
    assert os.path.isdir(directory)
