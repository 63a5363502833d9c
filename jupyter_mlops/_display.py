"""In-notebook calls that display something: the door for step outputs."""

from __future__ import annotations

from typing import Any

from .pipelines.outputs import MIME, encode_output


def output(name: str, value: Any) -> None:
    """Publish a step output; the pipeline runner reads it from the executed notebook.

    Values are JSON (numbers, strings, bools, None, lists, dicts) or a ``pathlib.Path``
    for a file the step wrote.

    >>> jupyter_mlops.output("test_accuracy", 0.97)  # doctest: +SKIP
    >>> jupyter_mlops.output("train_path", Path("data/train-3f2a.parquet"))  # doctest: +SKIP
    """
    from IPython.display import display

    payload = encode_output(name, value)
    display({MIME: payload, "text/plain": f"output {name} = {payload['value']!r}"}, raw=True)  # type: ignore[no-untyped-call]
