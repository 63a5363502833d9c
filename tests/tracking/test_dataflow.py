"""What a cell reads and writes, from its AST: many small cells."""

from __future__ import annotations

import pytest

from jupyter_mlops.tracking.dataflow import (
    TAG_LIMIT,
    DataflowTracker,
    FlowRecord,
    analyse,
    fingerprint,
    name_list,
)


def rw(source: str) -> tuple[set[str], set[str]]:
    flow = analyse(source)
    assert flow.unknown is None, flow.unknown
    return set(flow.reads), set(flow.writes)


@pytest.mark.parametrize(
    ("source", "reads", "writes"),
    [
        ("x = y + 1", {"y"}, {"x"}),
        ("x = 1\nz = x * 2", set(), {"x", "z"}),
        ("x += 1", {"x"}, {"x"}),
        ("total = 0\nfor i in items:\n    total += i", {"items"}, {"total", "i"}),
        ('df["x"] = df.a * k', {"df", "k"}, {"df"}),
        ("obj.attr = v", {"obj", "v"}, {"obj"}),
        ("a[i].b[j] = 0", {"a", "i", "j"}, {"a"}),
        ("d[key] += 1", {"d", "key"}, {"d"}),
        ("del x", set(), {"x"}),
        ('del df["a"], cache', {"df"}, {"df", "cache"}),
        ("model.fit(X, y)", {"model", "X", "y"}, {"model"}),
        ("items.append(item)", {"items", "item"}, {"items"}),
        ("print(len(data))", {"print", "len", "data"}, set()),
        ("sq = [v * v for v in values if v > lo]", {"values", "lo"}, {"sq"}),
        ("m = {k: w for k in keys}", {"keys", "w"}, {"m"}),
        ("g = (a + i for i in range(n))", {"range", "n", "a"}, {"g"}),
        ("pairs = [(i, j) for i in xs for j in ys(i)]", {"xs", "ys"}, {"pairs"}),
        ("f = lambda q: q * scale", {"scale"}, {"f"}),
        ("f = lambda q, s=default: q * s", {"default"}, {"f"}),
        ("def f(a, *b, c=c0, **d):\n    return a + b + c + d + glob", {"c0", "glob"}, {"f"}),
        (
            "def outer():\n    z = 1\n    def inner():\n        return z + free\n    return inner",
            {"free"},
            {"outer"},
        ),
        ("def bump():\n    global counter\n    counter += 1", {"counter"}, {"bump", "counter"}),
        ("def f():\n    x = 1\n    return x", set(), {"f"}),
        ("@deco\ndef f() -> Ret:\n    pass", {"deco", "Ret"}, {"f"}),
        (
            "class A(Base):\n    size = n\n    def m(self):\n        return u",
            {"Base", "n", "u"},
            {"A"},
        ),
        ("if (n := len(xs)) > 3:\n    big = True", {"len", "xs"}, {"n", "big"}),
        ("ys = [y for x in xs if (y := x * 2)]", {"xs"}, {"ys", "y"}),
        ("import numpy as np, os.path", set(), {"np", "os"}),
        ("from sklearn.linear_model import Ridge as R, Lasso", set(), {"R", "Lasso"}),
        ("np.mean(x)", {"np", "x"}, {"np"}),  # a module: dropped when recorded, see below
        ("with open(p) as fh:\n    text = fh.read()", {"open", "p"}, {"fh", "text"}),
        ("try:\n    v = f()\nexcept E as err:\n    v = err", {"f", "E"}, {"v", "err"}),
        ("x: int = y", {"int", "y"}, {"x"}),
        ("a, (b, *c) = t", {"t"}, {"a", "b", "c"}),
        (
            "match cmd:\n    case [op, arg]:\n        r = op\n    case K.x:\n        r = 0",
            {"cmd", "K"},
            {"op", "arg", "r"},
        ),
        ("x = 1\nx = x + 1", set(), {"x"}),
        ("_ = 1\nIn\nOut", set(), set()),
    ],
)
def test_reads_and_writes(source: str, reads: set[str], writes: set[str]) -> None:
    assert rw(source) == (reads, writes)


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ('exec("x = 1")', "exec"),
        ('y = eval("x + 1")', "eval"),
        ('globals()["x"] = 1', "globals"),
        ("vars().update(a=1)", "vars"),
        ("def f():\n    return locals()", "locals"),
        ("from math import *", "import *"),
        ("get_ipython().user_ns['x'] = 1", "user_ns"),
        ("x = = 1", "syntax"),
    ],
)
def test_what_it_cannot_read_is_unknown(source: str, why: str) -> None:
    flow = analyse(source)
    assert flow.unknown is not None and why in flow.unknown
    assert flow.reads == flow.writes == ()


def test_ipython_syntax_goes_through_the_transform() -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    assert set(analyse("%matplotlib inline\nx = y", transform).writes) == {"x"}
    flow = analyse("%%time\nmodel = fit(data)", transform)
    assert (set(flow.reads), set(flow.writes)) == ({"fit", "data"}, {"model"})
    assert "%run" in (analyse("%run other.py", transform).unknown or "")
    assert set(analyse("files = !ls", transform).writes) == {"files"}


def test_the_parse_is_shared_with_capture() -> None:
    from jupyter_mlops.tracking import capture

    source = "shared_parse_probe = 1"
    capture.bound_names(source)
    hits = capture.parse_cell.cache_info().hits
    analyse(source)
    assert capture.parse_cell.cache_info().hits == hits + 1


def test_fingerprints_are_cheap_or_absent() -> None:
    import numpy as np

    assert fingerprint(0.1) == fingerprint(0.1) != fingerprint(0.2)
    assert fingerprint([1, 2]) != fingerprint((1, 2))
    assert fingerprint(np.arange(10)) == fingerprint(np.arange(10))
    assert fingerprint(np.zeros(1_000_000)) is None
    assert fingerprint(object()) is None
    assert fingerprint("x" * 10_000) is None


def test_upstream_is_the_last_writer_and_modules_are_not_written() -> None:
    import numpy as np

    tracker = DataflowTracker()
    ns: dict[str, object] = {"np": np}
    ns["lr"] = 0.1
    first = tracker.observe(
        analyse("lr = 0.1"), record_id="a", cell_id="c1", source_hash="h1", namespace=ns
    )
    ns["w"] = 0.2
    second = tracker.observe(
        analyse("w = np.sqrt(lr)"), record_id="b", cell_id="c2", source_hash="h2", namespace=ns
    )
    assert first.writes == ["lr"]
    assert second.upstream == {"a": {"lr": first.written["lr"]}}
    assert second.writes == ["w"]  # np.sqrt() changes nothing in np
    tags = second.tags()
    assert tags["mlops.reads"] == "np,lr" and tags["mlops.writes"] == "w"


def test_long_tags_are_cut_with_a_marker() -> None:
    names = [f"name_{i:05d}" for i in range(2000)]
    text = name_list(names)
    assert len(text) <= TAG_LIMIT and text.endswith("more)") and "…(+" in text
    record = FlowRecord(
        reads=names,
        writes=names,
        upstream={"r" * 32: {n: "v" * 12 for n in names}},
        written={n: "v" * 12 for n in names},
    )
    tags = record.tags()
    assert all(len(v) <= TAG_LIMIT for v in tags.values())
    assert '"t":1' in tags["mlops.dataflow"]
