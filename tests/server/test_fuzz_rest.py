"""Generated bodies at every write route of the Jupyter REST API: no answer is a 5xx, and
the server answers valid requests the same afterwards.

pytest-jupyter's server runs on the test's own event loop, so hypothesis generates the
bodies first (a plain ``@given`` function collecting them) and the test then sends each.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_mlops.config import Settings

from .conftest import Api

pytestmark = pytest.mark.slow

#: (method, path, the fields its handler reads)
WRITE_ROUTES = [
    ("POST", "models/lin/promote", ["version", "alias", "reason", "force"]),
    ("POST", "models/lin/rollback", ["alias", "reason"]),
    ("POST", "deployments", ["model", "name", "canary", "canary_weight", "follow"]),
    ("DELETE", "deployments/{id}", []),
    ("PUT", "deployments/nope/traffic", ["weights"]),
    ("POST", "deployments/nope/switch", ["model"]),
    ("POST", "monitor/nope", ["window", "act"]),
    ("POST", "audit", ["model", "request"]),
]
PER_ROUTE = 160

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.integers(min_value=2**63, max_value=2**80)
    | st.sampled_from(["1", "2", "champion", "lin/99", "nope@x", "../..", "-1", "1h", "1e999"])
)  # fmt: skip
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip
_deep = st.integers(1, 120_000).map(lambda n: b'{"a": ' * n + b"1" + b"}" * (n % 2 and n))
_non_finite = st.sampled_from(
    [b'{"canary_weight": NaN, "model": "lin/1"}', b'{"weights": {"1": NaN}}',
     b'{"weights": {"1": Infinity, "2": -Infinity}}', b'{"version": 1e999}',
     b'{"window": -Infinity}', b'{"weights": {"1": 1e400}}', b"[" * 50_000]
)  # fmt: skip


def _route_bodies(fields: list[str]) -> st.SearchStrategy[bytes]:
    shaped = st.fixed_dictionaries({}, optional={f: json_values for f in fields}).filter(
        # a well-formed deploy of a real version would start a model server: not this test's
        lambda body: not isinstance(body.get("model"), str) or "lin" not in body["model"]
    )
    return (
        shaped.map(lambda b: json.dumps(b, allow_nan=True).encode())
        | json_values.map(lambda b: json.dumps(b, allow_nan=True).encode())
        | st.binary(max_size=200) | _deep | _non_finite
        | st.integers(1, 5000).map(lambda n: b'{"version": ' + b"7" * n + b"}")
    )  # fmt: skip


def _generate(strategy: st.SearchStrategy[Any]) -> list[Any]:
    found: list[Any] = []

    @settings(max_examples=PER_ROUTE, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


async def _valid(api: Api) -> list[tuple[int, Any]]:
    answers = []
    for method, path, body in [
        ("GET", "status", None),
        ("GET", "deployments", None),
        ("POST", "models/nope/promote", {"version": 1}),
        ("PUT", "deployments/nope/traffic", {"weights": {"1": 100}}),
    ]:
        response, data = await api(method, path, body=body)
        answers.append((response.code, data))
    return answers


@pytest.mark.parametrize(("method", "path", "fields"), WRITE_ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in WRITE_ROUTES])  # fmt: skip
async def test_no_body_gets_a_5xx(
    api: Api, lin: Settings, method: str, path: str, fields: list[str]
) -> None:
    before = await _valid(api)
    if method == "DELETE":  # no body: what varies is the id in the path
        ids = _generate(st.text(st.characters(blacklist_categories=["Cs"]), max_size=30))
        requests = [(path.format(id=quote(i, safe="") or "x"), None) for i in ids]
    else:
        requests = [(path, body) for body in _generate(_route_bodies(fields))]
    assert len(requests) >= PER_ROUTE // 2
    for where, body in requests:
        response, data = await api(method, where, body=body)
        assert response.code < 500, (method, where, body[:300] if body else body, data)
        if response.code >= 400:
            assert isinstance(data, dict) and data["message"], (where, data)
    assert await _valid(api) == before
