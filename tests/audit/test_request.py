"""From one prediction a real server answered and captured back to its version and more."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

from jupyter_mlops import store
from jupyter_mlops.audit import audit
from jupyter_mlops.config import Settings
from jupyter_mlops.monitoring.labels import log_labels
from jupyter_mlops.monitoring.monitor import monitor
from jupyter_mlops.serving import manager
from tests.conftest import wait_for_capture


def _predict(url: str, rows: np.ndarray, request_id: str) -> str:
    body = json.dumps({"inputs": rows.tolist()}).encode()
    request = urllib.request.Request(
        f"{url}/invocations",
        data=body,
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return str(response.headers["x-request-id"])


def test_a_request_id_leads_to_the_version_that_answered_it(audited: Settings) -> None:
    d = manager.deploy("iris@champion", name="prod", settings=audited)
    try:
        x = load_iris().data.astype(np.float32)
        assert _predict(d.url, x[:1], "order-4711") == "order-4711"
        _predict(d.url, x[1:60], "batch-1")
        wait_for_capture("prod", audited, 60)
        log_labels("prod", ["order-4711"], [0], settings=audited)
        checked = monitor("prod", "1h", settings=audited)
    finally:
        manager.undeploy("prod", settings=audited)
    # what labelled monitoring with slice columns logs beside quality
    store.client(audited).log_metric(checked.run_id, "fairness.demographic_parity_difference", 0.12)
    report = audit(request="order-4711", settings=audited)
    r = report.facts.request
    assert r is not None
    assert (r.deployment, r.version, r.rows, r.label) == ("prod", "2", 1, 0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r.time), r.time
    assert r.inputs == {f"f{i}": float(v) for i, v in enumerate(x[0])}
    assert r.outputs  # what the model answered
    assert report.facts.version == "2" and report.facts.origin == "notebook"
    [deployment] = report.facts.deployments
    assert deployment["id"] == "prod" and "token" not in deployment
    [run] = report.facts.monitoring
    assert run.run_id == checked.run_id and run.metrics["rows"] == 60
    window = report.facts.analysis[-1]
    assert window.run == checked.run_id and window.label.endswith("(monitor run)")
    assert window.metrics == {"fairness.demographic_parity_difference": 0.12}
    html = Path(report.html).read_text(encoding="utf-8")
    assert "order-4711" in html and "The request" in html
    assert "request-order-4711" in Path(report.html).name
    # the id of a batch finds all of its rows
    batch = audit(request="batch-1", settings=audited).facts.request
    assert batch is not None and batch.rows == 59
