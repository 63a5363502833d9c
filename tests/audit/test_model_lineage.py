"""The lineage of a registered model: the chain of cell runs behind the cell that packaged
each version, read from the store, with the params set along it."""

from __future__ import annotations

import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.exceptions import NotFoundError
from jupyter_mlops.registry.model_lineage import model_lineage


def _sources(settings: Settings, spec: str) -> list[str]:
    return [run.source for run in model_lineage(settings, spec).runs]


def test_each_version_has_the_chain_that_trained_it(audited: Settings) -> None:
    first = _sources(audited, "iris/1")
    assert any("load_iris" in s for s in first)
    assert any("model = LogisticRegression" in s for s in first)
    assert "first = jupyter_mlops.package" in first[-1]
    assert not any("db_url" in s for s in first)  # read by nothing on the way
    second = model_lineage(audited, "iris@champion")  # v2, forced in
    sources = [r.source for r in second.runs]
    assert "second = jupyter_mlops.package" in sources[-1]
    assert any("weak = LogisticRegression" in s for s in sources)
    assert "C" in second.params
    data = second.to_dict()
    assert data["target"] == "iris@champion" and data["cells"][-1]["source"] == sources[-1]
    assert data["edges"] and all(e["to"] for e in data["edges"])


def test_an_unknown_alias_or_version_says_what_there_is(audited: Settings) -> None:
    with pytest.raises(NotFoundError, match="model 'iris' has no alias 'nightly'"):
        model_lineage(audited, "iris@nightly")
    with pytest.raises(NotFoundError, match="iris"):
        model_lineage(audited, "iris/99")
    with pytest.raises(NotFoundError, match="nosuch"):
        model_lineage(audited, "nosuch@champion")
