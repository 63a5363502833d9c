"""Secrets in many shapes go through a real kernel; none of them reaches the store, the
journal, the artifacts or the logs, and ordinary values are still params."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops import store
from jupyter_mlops.config import TrackingSettings
from jupyter_mlops.tracking.capture import MetricNamer, bound_names, snapshot
from jupyter_mlops.tracking.redact import MASKED_REASON, Redactor
from tests.conftest import (
    cell_text,
    drain,
    execute_notebook,
    runs_of_kind,
    settings_for,
    write_notebook,
)

# Made-up credentials in the shapes real ones have. Each entry: what to search for on disk
# (for a URI its password, for a private key its body) and the cell line that binds it.
PEM_BODY = "MIIEowIBAAKCAQEAx4Zq9PZ2xw7Jm3Hk5RtQw8E2"
SECRETS: dict[str, tuple[str, str]] = {
    "aws access key": ("AKIAIOSFODNN7QXZ4WBE", 'aws_key_id = "AKIAIOSFODNN7QXZ4WBE"'),
    "github token": (
        "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        'gh = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"',
    ),
    "slack token": (
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        'slack = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"',
    ),
    "openai project key": (
        "sk-proj-4fJ9kLm2Qx7Rt8Vw3Yz1Ab5Cd6Ef0GhIjKlMnOpQrSt",
        'llm = "sk-proj-4fJ9kLm2Qx7Rt8Vw3Yz1Ab5Cd6Ef0GhIjKlMnOpQrSt"',
    ),
    "openai legacy key": (
        "sk-abcdefghij0123456789T3BlbkFJabcdefghij0123456789",
        'legacy = "sk-abcdefghij0123456789T3BlbkFJabcdefghij0123456789"',
    ),
    "private key": (
        PEM_BODY,
        f'pem = "-----BEGIN RSA PRIVATE KEY-----\\n{PEM_BODY}\\n-----END RSA PRIVATE KEY-----"',
    ),
    "jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        'session_jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.'
        'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"',
    ),
    "postgresql uri password": (
        "pg-Pa55word-e2e",
        'pg_url = "postgresql://trainer:pg-Pa55word-e2e@db.internal:5432/features"',
    ),
    "mysql uri password": (
        "my-S3cret-e2e",
        'mysql_url = "mysql://root:my-S3cret-e2e@localhost/db"',
    ),
    "http basic auth password": (
        "web-pass-77e2e",
        'web = "https://admin:web-pass-77e2e@example.com/api"',
    ),
    "environment value": ("svc-7f3k9q2m1x-e2e", 'svc = os.environ["MY_SERVICE_TOKEN"]'),
    "name api_key": ("plain-apikey-e2e", 'api_key = "plain-apikey-e2e"'),
    "name dbPassword": ("hunter2-db-e2e", 'dbPassword = "hunter2-db-e2e"'),
    "name client_secret": ("cs-shhh-42-e2e", 'client_secret = "cs-shhh-42-e2e"'),
    "mlops.yaml pattern": (
        "corp-abcdefghij0123456789",
        'corp_value = "corp-abcdefghij0123456789"',
    ),
}
PLAIN = 'lr = 0.01\noptimizer = "adam"\ndata_path = "data/train.csv"\nmodel_name = "resnet-50"'
CELLS = [
    "%load_ext jupyter_mlops",
    "import os\n" + "\n".join(line for _, line in SECRETS.values()),
    PLAIN,
    # a secret as a cell's first line (run name, preview) and in an error message
    'github_token = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"\n'
    'raise PermissionError(f"login refused for {dbPassword} at {pg_url}")',
    "import jupyter_mlops\njupyter_mlops.log_params(token=gh, batch=32)",
    "%mlops status",
    # the journal is removed once written; keep a copy to search
    "import shutil\nshutil.copytree('.mlops/journal', 'journal-copy')",
]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("secrets")
    (root / "mlops.yaml").write_text('tracking:\n  secret_patterns: ["^corp-[a-z0-9]{20}$"]\n')
    saved = os.getcwd()
    env_saved = {
        k: os.environ.pop(k)
        for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
        if k in os.environ
    }
    os.chdir(root)
    try:
        path = write_notebook(root / "nb.ipynb", CELLS)
        nb = execute_notebook(path, env={"MY_SERVICE_TOKEN": SECRETS["environment value"][0]})
        drain(root)
        yield {"root": root, "nb": nb}
    finally:
        os.chdir(saved)
        os.environ.update(env_saved)
        store.forget_clients()


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def leaks(texts: dict[str, str]) -> dict[str, list[str]]:
    """Secret kind -> where its text was found, for every secret found anywhere."""
    found: dict[str, list[str]] = {}
    for kind, (needle, _) in SECRETS.items():
        places = [where for where, text in texts.items() if needle in text]
        if places:
            found[kind] = places
    return found


def files_under(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder.parent)): p.read_bytes().decode("utf-8", "replace")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def all_runs(root: Path) -> list[Any]:
    client = store.client(settings_for(root))
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, max_results=10_000))


def test_the_notebook_ran_every_cell(tracked: dict[str, Any]) -> None:
    outputs = [cell_text(c) for c in tracked["nb"].cells]
    assert "PermissionError" in outputs[3]
    assert all("Error" not in text for i, text in enumerate(outputs) if i != 3), outputs


def test_no_secret_in_any_param_tag_metric_or_run_name(tracked: dict[str, Any]) -> None:
    texts: dict[str, str] = {}
    for run in all_runs(tracked["root"]):
        rid = run.info.run_id[:8]
        texts[f"{rid} run name"] = run.info.run_name or ""
        for key, value in run.data.params.items():
            texts[f"{rid} param {key}"] = f"{key}={value}"
        for key, value in run.data.tags.items():
            texts[f"{rid} tag {key}"] = f"{key}={value}"
        texts[f"{rid} metric keys"] = " ".join(run.data.metrics)
    assert leaks(texts) == {}


def test_no_secret_in_the_database_file(tracked: dict[str, Any]) -> None:
    state = tracked["root"] / ".mlops"
    texts = {p.name: p.read_bytes().decode("latin-1") for p in state.glob("mlflow.db*")}
    assert "mlflow.db" in texts
    assert leaks(texts) == {}


def test_no_secret_in_the_journal(tracked: dict[str, Any]) -> None:
    texts = files_under(tracked["root"] / "journal-copy")
    texts.update(files_under(tracked["root"] / ".mlops" / "journal"))
    assert any(name.endswith(".jsonl") for name in texts)
    assert leaks(texts) == {}


def test_no_secret_in_the_artifacts(tracked: dict[str, Any]) -> None:
    texts = files_under(tracked["root"] / ".mlops" / "artifacts")
    assert texts  # the executed notebook of the session at least
    assert leaks(texts) == {}


def test_no_secret_in_the_logs(tracked: dict[str, Any]) -> None:
    texts = files_under(tracked["root"] / ".mlops" / "logs")
    assert leaks(texts) == {}


def test_ordinary_values_stay_params(tracked: dict[str, Any]) -> None:
    cells = runs_of_kind(tracked["root"], "cell")
    [plain] = [r for r in cells if r.data.tags["mlops.source_hash"] == sha1(PLAIN)]
    assert plain.data.params == {
        "lr": "0.01",
        "optimizer": "adam",
        "data_path": "data/train.csv",
        "model_name": "resnet-50",
    }


def test_secrets_are_noted_as_masked_not_logged(tracked: dict[str, Any]) -> None:
    cells = runs_of_kind(tracked["root"], "cell")
    [corpus] = [r for r in cells if "aws_key_id = " in r.data.tags["mlops.source"]]
    assert corpus.data.params == {}
    names = [line.split(" = ")[0] for _, line in SECRETS.values()]
    assert json.loads(corpus.data.tags["mlops.skipped"]) == dict.fromkeys(names, MASKED_REASON)
    assert 'aws_key_id = "***"' in corpus.data.tags["mlops.source"]
    status = cell_text(tracked["nb"].cells[5])
    assert "masked:        " in status and "masked:        0 " not in status


def test_the_redactor_masks_this_corpus_without_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the recorder gets from the redactor for the cells above."""
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRETS["environment value"][0])
    settings = TrackingSettings(secret_patterns=("^corp-[a-z0-9]{20}$",))
    redactor = Redactor(settings)
    masked = "\n".join(redactor.mask_source(cell) for cell in CELLS)
    assert leaks({"source": masked}) == {}
    namespace: dict[str, Any] = {}
    exec(CELLS[1] + "\n" + PLAIN, namespace)
    names = bound_names(CELLS[1] + "\n" + PLAIN)
    captured = snapshot(names, namespace, MetricNamer(settings.metric_pattern), 500, redactor)
    assert captured.params == {
        "lr": 0.01,
        "optimizer": "adam",
        "data_path": "data/train.csv",
        "model_name": "resnet-50",
    }
    assert set(captured.skipped) == {line.split(" = ")[0] for _, line in SECRETS.values()}
    error = "login refused for hunter2-db-e2e at postgresql://trainer:pg-Pa55word-e2e@db/x"
    assert leaks({"error": redactor.mask_text(error)}) == {}
