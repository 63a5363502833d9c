"""What the redactor calls a secret, what it leaves alone, and what masked source looks like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.config import TrackingSettings, load_settings
from jupyter_mlops.exceptions import ConfigError
from jupyter_mlops.tracking.capture import MetricNamer, snapshot
from jupyter_mlops.tracking.redact import MASK, MASKED_REASON, Redactor, name_looks_secret

# Shapes of real credentials (made up, never valid): each must be found by its value alone.
AWS_KEY = "AKIAIOSFODNN7QXZ4WBE"
GITHUB = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
OPENAI_LEGACY = "sk-abcdefghij0123456789T3BlbkFJabcdefghij0123456789"
OPENAI_PROJECT = "sk-proj-4fJ9kLm2Qx7Rt8Vw3Yz1Ab5Cd6Ef0GhIjKlMnOpQrSt"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEowIBAAKCAQEAx4Zq9PZ2xw7Jm3Hk5Rt"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
SECRET_VALUES = {
    "aws": AWS_KEY,
    "github": GITHUB,
    "slack": SLACK,
    "openai legacy": OPENAI_LEGACY,
    "openai project": OPENAI_PROJECT,
    "jwt": JWT,
    "private key": PEM,
    "postgresql uri": "postgresql://trainer:pg-Pa55word@db.internal:5432/features",
    "mysql uri": "mysql://root:my-S3cret@localhost/db",
    "http basic auth": "https://admin:web-pass-77@example.com/api",
}
PLAIN_VALUES = [
    "adam",
    "data/train.csv",
    "resnet-50",
    "bert-base-uncased",
    "meta-llama/Llama-3-8B-Instruct",
    "sentence-transformers/all-MiniLM-L6-v2",
    "gpt-4o-mini-2024-07-18",
    "http://localhost:5000",
    "s3://my-bucket/models/v2/",
    "3f2a9c0e4b5d6e7f8a9b0c1d2e3f4a5b",  # a run id: hex, not a secret
    "2024-01-01T00:00:00Z",
    "/home/user/projects/Experiment2024/data/TrainSetV2",
    "CamelCaseModelNameV2Large2024",
]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(
        TrackingSettings(secret_patterns=("^corp-[a-z0-9]{20}$",)),
        environ={"MY_SERVICE_TOKEN": "svc-7f3k9q2m1x", "HOME": "/root", "SHORT_TOKEN": "abc"},
    )


@pytest.mark.parametrize("kind", sorted(SECRET_VALUES))
def test_secret_values_are_found_by_value_alone(redactor: Redactor, kind: str) -> None:
    assert redactor.is_secret("x", SECRET_VALUES[kind])


@pytest.mark.parametrize("value", PLAIN_VALUES)
def test_ordinary_values_are_not_secrets(redactor: Redactor, value: str) -> None:
    assert not redactor.is_secret("x", value)


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apiKey",
        "dbPassword",
        "client_secret",
        "github_token",
        "MY_SERVICE_TOKEN",
        "password",
        "passwd",
        "db_pwd",
        "token",
        "openai_key",
        "aws_secret_access_key",
        "private_key",
        "credentials",
        "userPass",
        "auth",
    ],
)
def test_secret_names(name: str) -> None:
    assert name_looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "monkey",
        "keys_count",
        "key",
        "sort_key",
        "primary_key",
        "max_tokens",
        "num_tokens",
        "pad_token",
        "eos_token",
        "tokenizer",
        "token_count",
        "author",
        "secret_name",
        "api_key_env",
        "password_file",
        "lr",
        "optimizer",
    ],
)
def test_names_that_only_sound_secret(name: str) -> None:
    assert not name_looks_secret(name)


def test_secret_names_mask_any_string_but_not_placeholders(redactor: Redactor) -> None:
    assert redactor.is_secret("password", "hunter2")
    assert not redactor.is_secret("pad_token", "<pad>")
    assert not redactor.is_secret("api_key", "${API_KEY}")
    assert not redactor.is_secret("api_key", "")
    assert not redactor.is_secret("api_key", 12345)


def test_environment_values_and_custom_patterns(redactor: Redactor) -> None:
    assert redactor.is_secret("svc", "svc-7f3k9q2m1x")
    assert not redactor.is_secret("home", "/root")
    assert not redactor.is_secret("x", "abc")  # SHORT_TOKEN: too short to mask everywhere
    assert redactor.is_secret("x", "corp-abcdefghij0123456789")
    assert not redactor.is_secret("x", "corp-short")


def test_environment_is_reread_when_it_changes() -> None:
    env = {"HOME": "/root"}
    redactor = Redactor(TrackingSettings(), environ=env)
    assert not redactor.is_secret("x", "late-token-value")
    env["LATE_TOKEN"] = "late-token-value"
    assert redactor.is_secret("x", "late-token-value")


def test_mask_source_keeps_code_and_masks_literals(redactor: Redactor) -> None:
    source = (
        f'api_key = "{OPENAI_PROJECT}"\n'
        'password = "hunter2"\n'
        'db = "postgresql://user:pg-Pa55word@db:5432/x"  # owner ' + GITHUB + "\n"
        "conn = connect(host='db', password='swordfish')\n"
        'os.environ["NEW_TOKEN"] = "abcdefgh12"\n'
        'cfg = {"client_secret": "cs-1234", "region": "eu-west-1"}\n'
        'corp = "corp-abcdefghij0123456789"\n'
        'svc = "svc-7f3k9q2m1x"\n'
        'lr = 0.01\noptimizer = "adam"\ndata_path = "data/train.csv"\n'
    )
    assert redactor.mask_source(source) == (
        'api_key = "***"\n'
        'password = "***"\n'
        'db = "postgresql://user:***@db:5432/x"  # owner ***\n'
        "conn = connect(host='db', password='***')\n"
        'os.environ["NEW_TOKEN"] = "***"\n'
        'cfg = {"client_secret": "***", "region": "eu-west-1"}\n'
        'corp = "***"\n'
        'svc = "***"\n'
        'lr = 0.01\noptimizer = "adam"\ndata_path = "data/train.csv"\n'
    )
    assert redactor.masked == 9


def test_mask_source_masks_private_key_blocks_and_shell_lines(redactor: Redactor) -> None:
    source = f'pem = """{PEM}"""\n%env API_TOKEN=zz-top-secret\n!curl -u admin:swordfish x'
    masked = redactor.mask_source(source)
    assert PEM_BODY not in masked
    assert masked.startswith(f'pem = """{MASK}"""\n%env API_TOKEN={MASK}\n')
    escaped = (
        'k = "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBkg4LVW\\n-----END EC PRIVATE KEY-----"'
    )
    assert redactor.mask_source(escaped) == f'k = "{MASK}"'


def test_mask_source_is_cached_but_still_counts(redactor: Redactor) -> None:
    source = 'password = "hunter2"'
    first = redactor.mask_source(source)
    assert redactor.mask_source(source) == first == f'password = "{MASK}"'
    assert redactor.masked == 2


def test_mask_text_masks_what_was_seen_and_known_shapes(redactor: Redactor) -> None:
    redactor.is_secret("password", "hunter2-long")
    text = f"login failed for hunter2-long via mysql://root:pw1@h/db with {GITHUB}, token=abc123"
    assert redactor.mask_text(text) == (
        "login failed for *** via mysql://root:***@h/db with ***, token=***"
    )


def test_snapshot_skips_secrets_with_a_reason_and_counts_them(redactor: Redactor) -> None:
    namespace: dict[str, Any] = {
        "api_key": OPENAI_LEGACY,
        "db_url": "postgresql://u:pg-Pa55word@h/db",
        "lr": 0.01,
        "optimizer": "adam",
        "data_path": "data/train.csv",
        "model_name": "resnet-50",
        "val_loss": 0.3,
    }
    captured = snapshot(
        namespace, namespace, MetricNamer(TrackingSettings().metric_pattern), 500, redactor
    )
    assert captured.params == {
        "lr": 0.01,
        "optimizer": "adam",
        "data_path": "data/train.csv",
        "model_name": "resnet-50",
    }
    assert captured.metrics == {"val_loss": 0.3}
    assert captured.skipped == {"api_key": MASKED_REASON, "db_url": MASKED_REASON}
    assert MASKED_REASON == "masked: looks like a secret"
    assert redactor.masked == 2


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "tracking:\n  secret_patterns: corp-.*\n",
            "tracking.secret_patterns: must be a list of regular expressions",
        ),
        (
            "tracking:\n  secret_patterns: ['corp-(']\n",
            "tracking.secret_patterns: 'corp-(' is not a regular expression: "
            "missing ), unterminated subpattern at position 5",
        ),
        (
            "tracking:\n  export_tracking_uri: 1\n",
            "tracking.export_tracking_uri: must be true or false",
        ),
    ],
)
def test_bad_secret_settings_name_the_field(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "mlops.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(err.value) == f"{tmp_path / 'mlops.yaml'}: {message}"


def test_secret_patterns_come_from_mlops_yaml(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text('tracking:\n  secret_patterns: ["^corp-[a-z0-9]{20}$"]\n')
    settings = load_settings(tmp_path).tracking
    assert settings.secret_patterns == ("^corp-[a-z0-9]{20}$",)
    assert settings.export_tracking_uri is True
    assert Redactor(settings, environ={}).is_secret("x", "corp-abcdefghij0123456789")


ORDINARY_CELL = '''"""Fine-tune a classifier."""
import pandas as pd
from transformers import AutoTokenizer

model_name = "bert-base-uncased"
tokenizer = AutoTokenizer.from_pretrained(model_name, pad_token="[PAD]", use_fast=True)
max_tokens = 512
df = pd.read_csv("data/train.csv").merge(labels, on="user_id", how="left")
sort_key = "created_at"
checkpoint = "s3://my-bucket/runs/3f2a9c0e4b5d6e7f8a9b0c1d2e3f4a5b/model.pt"
digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
server = "http://localhost:5000"  # the tracking server, no credentials
headers = {"Content-Type": "application/json", "key": "value"}
print(f"{model_name}: {len(df)} rows")  # 'quotes' inside a comment
'''


def test_ordinary_code_is_left_as_it_is(redactor: Redactor) -> None:
    assert redactor.mask_source(ORDINARY_CELL) == ORDINARY_CELL
    assert redactor.masked == 0


def test_a_long_string_is_skipped_for_its_length_not_scanned(redactor: Redactor) -> None:
    namespace = {"blob": "x" * 600, "api_key": "k" * 600}
    captured = snapshot(namespace, namespace, MetricNamer("^$"), 500, redactor)
    assert captured.skipped == {
        "blob": "string of 600 characters (limit 500)",
        "api_key": "string of 600 characters (limit 500)",
    }
    assert redactor.masked == 0


def test_a_seen_secret_is_masked_where_it_comes_back(redactor: Redactor) -> None:
    redactor.mask_source('password = "swordfish1"\nauth = "basic"')
    assert redactor.mask_source('login("swordfish1", mode="basic")') == (
        f'login("{MASK}", mode="basic")'
    )


def test_a_cell_that_changes_an_environment_value_is_noticed() -> None:
    env = {"HF_TOKEN": "hf-old-value-1"}
    redactor = Redactor(TrackingSettings(), environ=env)
    env["HF_TOKEN"] = "hf-new-value-2"  # same number of variables
    assert not redactor.is_secret("t", "hf-new-value-2")
    redactor.mask_source('os.environ["HF_TOKEN"] = token_from_vault()')
    assert redactor.is_secret("t", "hf-new-value-2")
