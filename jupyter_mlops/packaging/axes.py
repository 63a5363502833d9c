"""Names and dynamic axes of a torch model's inputs and outputs.

Names come from the call or the model's ``forward``; dynamic axes beyond the batch are
declared (``{"x": {1: "seq"}}``) or found where two examples differ in size.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import PackagingError

#: the name of axis 0 of every input unless the call names it
BATCH = "batch"


def forward_parameters(model: Any) -> list[str]:
    """The positional parameters of ``model.forward`` (what the example's tensors feed)."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # a builtin or a C extension: nothing to read
        return []
    names = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            break  # what follows *args cannot be fed by position
        positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
        if positional and param.name != "self":
            names.append(param.name)
    return names


def _checked(given: Any, count: int, what: str, noun: str, detail: str = "") -> list[str]:
    if isinstance(given, str) or not isinstance(given, Sequence):
        raise PackagingError(f"{what} must be a list of strings, got {type(given).__name__}")
    names: list[str] = [*given]
    if len(names) != count:
        raise PackagingError(
            f"{what} has {len(names)} name(s) {names} for the model's {count} {noun}(s)"
            f"{detail}: give one name per {noun}"
        )
    for item in names:
        if not isinstance(item, str) or not item:
            raise PackagingError(f"{what}: every name must be a non-empty string, got {item!r}")
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise PackagingError(f"{what}: each name once, {doubled} appear(s) more than once")
    return names


def input_names(model: Any, inputs: tuple[Any, ...], given: Any = None) -> list[str]:
    """The call's names; else ``input`` for one input (as every model packaged before had,
    so clients of a deployed version keep working); else ``forward``'s parameter names;
    else ``input_0``, ``input_1``, ..."""
    count = len(inputs)
    if given is not None:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        return _checked(given, count, "input_names", "input", f" (the example: {shapes})")
    if count == 1:
        return ["input"]
    params = forward_parameters(model)
    if len(params) >= count:
        return params[:count]
    return [f"input_{i}" for i in range(count)]


def output_names(count: int, given: Any = None, inputs: Sequence[str] = ()) -> list[str]:
    """The call's names, else ``output`` for one output, ``output_0``, ... for several."""
    if given is None:
        return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]
    names = _checked(given, count, "output_names", "output")
    shared = sorted(set(names) & set(inputs))
    if shared:
        raise PackagingError(f"output_names {shared} are input names too: name them apart")
    return names


def _declared(
    dynamic: Any, names: list[str], inputs: tuple[Any, ...], axes: list[dict[int, str]]
) -> None:
    if not isinstance(dynamic, Mapping):
        raise PackagingError(
            "dynamic maps input names to {axis: name}, e.g. {'x': {1: 'seq'}}, "
            f"got {type(dynamic).__name__}"
        )
    for key, spec in dynamic.items():
        if key not in names:
            raise PackagingError(
                f"dynamic names {key!r}, which is not an input of the model: its inputs are {names}"
            )
        index = names.index(key)
        tensor = inputs[index]
        rank = tensor.dim()
        if not isinstance(spec, Mapping):
            raise PackagingError(
                f"dynamic[{key!r}] maps axis numbers to names, e.g. {{1: 'seq'}}, got {spec!r}"
            )
        for axis, dim in spec.items():
            if not isinstance(axis, int) or isinstance(axis, bool):
                raise PackagingError(f"dynamic[{key!r}]: axis {axis!r} is not an axis number")
            at = axis + rank if axis < 0 else axis
            if not 0 <= at < rank:
                raise PackagingError(
                    f"dynamic axis {axis} of input {key!r} does not exist: {key!r} has rank "
                    f"{rank} (shape {tuple(tensor.shape)}), so its axes are 0 to {rank - 1}"
                )
            if not isinstance(dim, str) or not dim.isidentifier():
                raise PackagingError(
                    f"dynamic axis {axis} of input {key!r}: name it with an identifier such "
                    f"as 'seq', got {dim!r}"
                )
            axes[index][at] = dim


def _inferred(
    names: list[str], inputs: tuple[Any, ...], others: tuple[Any, ...], axes: list[dict[int, str]]
) -> None:
    if len(others) != len(inputs):
        raise PackagingError(
            f"other_example holds {len(others)} input(s), the example {len(inputs)}: "
            "give the same inputs at other sizes"
        )
    # axes that change together share one name, so torch.export may keep them equal
    groups: dict[tuple[int, int], str] = {}
    found = False
    for index, (name, a, b) in enumerate(zip(names, inputs, others, strict=True)):
        if a.dim() != b.dim() or a.dtype != b.dtype:
            raise PackagingError(
                f"other_example's input {name!r} is {b.dtype} of shape {tuple(b.shape)}, the "
                f"example's {a.dtype} of shape {tuple(a.shape)}: only sizes may differ"
            )
        for axis in range(1, a.dim()):
            pair = (int(a.shape[axis]), int(b.shape[axis]))
            if pair[0] != pair[1]:
                found = True
                axes[index].setdefault(axis, groups.setdefault(pair, f"{name}_dim{axis}"))
    if not found:
        raise PackagingError(
            "other_example has the example's sizes on every axis but the batch: give one "
            "that differs along the axes to make dynamic (e.g. a longer sequence)"
        )


def dynamic_axes(
    names: list[str],
    inputs: tuple[Any, ...],
    dynamic: Any = None,
    others: tuple[Any, ...] | None = None,
) -> list[dict[int, str]]:
    """Per input, axis -> name of each dynamic axis: the batch, those found where ``others``
    differs in size, then those declared in ``dynamic`` (a declared name wins)."""
    axes = [{0: BATCH} for _ in inputs]
    if others is not None:
        _inferred(names, inputs, others, axes)
    if dynamic is not None:
        _declared(dynamic, names, inputs, axes)
    return axes


def dynamic_shapes(axes: list[dict[int, str]]) -> tuple[dict[int, Any], ...]:
    """``torch.export`` dims: one ``Dim`` per name, so equally named axes stay equal."""
    import torch

    dims = {name: torch.export.Dim(name) for named in axes for name in named.values()}
    return tuple({axis: dims[name] for axis, name in sorted(named.items())} for named in axes)


def grown(inputs: tuple[Any, ...], axes: list[dict[int, str]], by: int = 3) -> tuple[Any, ...]:
    """The example longer by ``by`` along every dynamic axis beyond the batch, its values
    drawn from the example's own (token ids stay valid ids)."""
    import torch

    sizes: dict[str, int] = {}
    for tensor, named in zip(inputs, axes, strict=True):
        for axis, dim in named.items():
            if axis:
                sizes.setdefault(dim, int(tensor.shape[axis]) + by)
    generator = torch.Generator().manual_seed(1)
    out = []
    for tensor, named in zip(inputs, axes, strict=True):
        shape = list(tensor.shape)
        for axis, dim in named.items():
            if axis:
                shape[axis] = sizes[dim]
        flat = tensor.reshape(-1)
        out.append(flat[torch.randint(0, flat.numel(), shape, generator=generator)])
    return tuple(out)


def beyond_batch(axes: list[dict[int, str]]) -> bool:
    return any(axis for named in axes for axis in named)


def mark_dynamic_outputs(
    proto: Any,
    first: list[Any],
    second: list[Any],
    inputs: tuple[Any, ...],
    others: tuple[Any, ...],
    axes: list[dict[int, str]],
) -> bool:
    """Declare as dynamic each output axis whose size changed between two input sizes.

    The exporter fixes an output's sequence axis at the example's length even when the
    input's is dynamic, so the signature and onnxruntime's shape check would claim one
    length. An axis takes the name of the input axis that had the same two sizes, if any.
    """
    sizes: dict[tuple[int, int], str] = {}
    for before, after, named in zip(inputs, others, axes, strict=True):
        for axis, name in named.items():
            sizes.setdefault((int(before.shape[axis]), int(after.shape[axis])), name)
    changed = False
    for value, a, b in zip(proto.graph.output, first, second, strict=False):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != a.dim() or a.dim() != b.dim():
            continue
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_param") or a.shape[axis] == b.shape[axis]:
                continue
            key = (int(a.shape[axis]), int(b.shape[axis]))
            dim.dim_param = sizes.get(key, f"{value.name}_{axis}")
            changed = True
    return changed
