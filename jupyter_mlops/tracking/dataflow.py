"""What a cell read and wrote, from the AST ``capture`` already parsed, and which earlier
cell runs wrote what it read.

Reads are the free names a cell loads (a name bound earlier in the same cell is no read;
the free names of a function or lambda it defines count, since they are looked up when it
runs). Writes are the names it binds (assignment, ``del``, ``import``, ``def``, ``for``,
walrus, a function's ``global``), the names it changes in place (``df["x"] = ...``,
``obj.a = 1``, ``x += 1``, ``del d[k]``: each also a read) and, conservatively, the names
it calls a method on (``model.fit(...)`` may change ``model``).

A cell whose dataflow cannot be read (it does not parse, it calls ``exec``/``eval``/
``globals()``, it runs a magic whose code is hidden in a string) is "dataflow unknown";
the analysis never raises into the recorder.

Runs on the kernel's thread: the analysis is cached by source like the parse, and what a
run adds per name is a dict lookup and, for small values, a short hash.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import re
import types
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .capture import cell_tree
from .files import FILE_PREFIX
from .stale import FlowRun

#: calls that read or write names no AST shows
_OPAQUE_CALLS = {
    "exec": "exec() runs code it cannot read",
    "eval": "eval() runs code it cannot read",
    "globals": "globals() reads or writes names it cannot see",
    "locals": "locals() reads or writes names it cannot see",
    "__import__": "__import__() binds names it cannot see",
}
#: magics with no Python dataflow of their own (IPython calls them through ``get_ipython()``)
_PLAIN_MAGICS = frozenset(
    [
        "matplotlib",
        "load_ext",
        "reload_ext",
        "unload_ext",
        "mlops",
        "pip",
        "conda",
        "config",
        "autoreload",
        "aimport",
        "env",
        "who",
        "whos",
        "who_ls",
        "pwd",
        "ls",
        "cd",
        "history",
        "pinfo",
        "pinfo2",
        "precision",
        "alias",
        "lsmagic",
        "magic",
        "xmode",
        "writefile",
        "html",
        "javascript",
        "js",
        "bash",
        "sh",
        "markdown",
        "latex",
        "svg",
        "script",
        "system",
        "sx",
        "getoutput",
        "clear",
        "pylab",
        "gui",
        "notebook",
    ]
)
#: magics whose code argument is Python run in the user's namespace: analysed like a cell
_CODE_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
#: names IPython puts in the namespace itself
_SHELL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "display"})
_SHELL_NAME = re.compile(r"^_+\d*$|^_i+\d*$|^_[ido]h$")
_BUILTINS = frozenset(dir(builtins))
#: MLflow's tag value limit
TAG_LIMIT = 8000
#: values held in full for a fingerprint; bigger ones have none (their version follows the
#: cell's source and inputs instead)
_SMALL_TEXT = 4096
_SMALL_ARRAY_BYTES = 100_000
_SMALL_SEQUENCE = 64


@dataclass(frozen=True)
class CellFlow:
    """The names a cell's source reads and writes, in first-seen order."""

    reads: tuple[str, ...] = ()
    #: bound or deleted
    binds: tuple[str, ...] = ()
    #: changed in place (subscript or attribute assignment, ``+=`` on them, ``del d[k]``)
    mutates: tuple[str, ...] = ()
    #: a method was called on it: perhaps changed
    maybe: tuple[str, ...] = ()
    #: why the dataflow is unknown, or None
    unknown: str | None = None

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.binds + self.mutates + self.maybe))


class _Unknown(Exception):
    pass


def _root(node: ast.expr) -> str | None:
    """``a`` for ``a.b[c].d``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class _Scope(ast.NodeVisitor):
    """Free names of a function, lambda, class body or comprehension (flow-insensitive)."""

    def __init__(self, params: Iterable[str] = ()) -> None:
        self.loads: dict[str, None] = {}
        self.local: set[str] = set(params)
        self.globals: set[str] = set()
        self.global_stores: dict[str, None] = {}
        self.nested_free: dict[str, None] = {}

    def free(self) -> tuple[list[str], list[str]]:
        names = {**self.loads, **self.nested_free}
        local = self.local - self.globals
        return [n for n in names if n not in local], list(self.global_stores)

    def _store(self, name: str) -> None:
        if name in self.globals:
            self.global_stores[name] = None
        else:
            self.local.add(name)

    def visit_Constant(self, node: ast.Constant) -> None:
        pass  # ast.NodeVisitor's own looks for deprecated visit_Num & co: slow, and no names

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads[node.id] = None
        else:
            self._store(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.local.update(node.names)  # bound in an enclosing function, not the notebook

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._store(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._store(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._store(node.name)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        _check_opaque(node)
        self.generic_visit(node)

    def _nested(self, scope: _Scope, name: str | None) -> None:
        free, stores = scope.free()
        self.nested_free.update(dict.fromkeys(free))
        self.global_stores.update(dict.fromkeys(stores))
        if name is not None:
            self._store(name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in _outer_exprs(node):
            self.visit(expr)
        self._nested(_function_scope(node.args, node.body), node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(expr)
        self._nested(_function_scope(node.args, [node.body]), None)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._nested(_class_scope(node), node.name)

    def _comprehension(self, node: ast.AST, elts: list[ast.expr]) -> None:
        self.visit(node.generators[0].iter)  # type: ignore[attr-defined]  # the enclosing scope's
        inner = _comprehension_scope(node, elts)
        free, stores = inner.free()
        self.nested_free.update(dict.fromkeys(free))
        self.global_stores.update(dict.fromkeys(stores))
        for walrus in _walruses(node):
            self._store(walrus)  # := in a comprehension binds in the enclosing scope

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_ListComp  # type: ignore[assignment]
    visit_GeneratorExp = visit_ListComp  # type: ignore[assignment]

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])


def _walruses(node: ast.AST) -> list[str]:
    return [
        n.target.id
        for n in ast.walk(node)
        if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
    ]


def _outer_exprs(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """What a ``def`` evaluates where it stands: decorators, defaults, annotations."""
    args = node.args
    out = [*node.decorator_list, *args.defaults, *(d for d in args.kw_defaults if d is not None)]
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None and arg.annotation is not None:
            out.append(arg.annotation)
    if node.returns is not None:
        out.append(node.returns)
    return out


def _function_scope(args: ast.arguments, body: list[ast.stmt] | list[ast.expr]) -> _Scope:
    params = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    scope = _Scope(params)
    for stmt in body:
        scope.visit(stmt)
    return scope


def _comprehension_scope(node: ast.AST, elts: list[ast.expr]) -> _Scope:
    """A comprehension's own scope; its first iterable is evaluated outside it."""
    gens: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
    inner = _Scope()
    for i, gen in enumerate(gens):
        if i:
            inner.visit(gen.iter)
        inner.visit(gen.target)
        for cond in gen.ifs:
            inner.visit(cond)
    for elt in elts:
        inner.visit(elt)
    return inner


def _class_scope(node: ast.ClassDef) -> _Scope:
    scope = _Scope()
    for stmt in node.body:
        scope.visit(stmt)
    return scope


def _check_opaque(node: ast.Call) -> None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in _OPAQUE_CALLS:
        raise _Unknown(_OPAQUE_CALLS[func.id])
    if isinstance(func, ast.Name) and func.id == "vars" and not node.args:
        raise _Unknown("vars() reads or writes names it cannot see")


class _CellVisitor(_Scope):
    """The top level of a cell: order matters, a name bound before it is loaded is no read."""

    def __init__(self, transform: Callable[[str], str] | None) -> None:
        super().__init__()
        self.reads: dict[str, None] = {}
        self.binds: dict[str, None] = {}
        self.mutates: dict[str, None] = {}
        self.maybe: dict[str, None] = {}
        self.bound: set[str] = set()
        self.transform = transform

    def _load(self, name: str) -> None:
        if name not in self.bound:
            self.reads[name] = None

    def _store(self, name: str) -> None:
        self.binds[name] = None
        self.bound.add(name)

    def _mutate(self, target: ast.expr) -> None:
        name = _root(target)
        if name is not None:
            self._load(name)
            self.mutates[name] = None

    def _target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self._store(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self._target(elt)
        elif isinstance(node, ast.Starred):
            self._target(node.value)
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            self._visit_target_parts(node)
            self._mutate(node)
        else:
            self.visit(node)

    def _visit_target_parts(self, node: ast.expr) -> None:
        """The loads inside ``a[i].b[j]`` other than ``a``: ``i`` and ``j``."""
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Subscript):
                self.visit(node.slice)
            elif node.attr in ("user_ns", "user_global_ns"):
                raise _Unknown(f"the shell's {node.attr} reads or writes names it cannot see")
            node = node.value
        if not isinstance(node, ast.Name):
            self.visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._load(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._store(node.id)
        else:  # del
            self._store(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._target(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._load(node.target.id)
            self._store(node.target.id)
        else:
            self._target(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
            self._target(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target(target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._target(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        self.visit(node.context_expr)
        if node.optional_vars is not None:
            self._target(node.optional_vars)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._target(node.target)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if any(alias.name == "*" for alias in node.names):
            raise _Unknown(f"from {node.module} import * binds names it cannot list")
        super().visit_ImportFrom(node)

    def visit_Global(self, node: ast.Global) -> None:
        pass  # at the top level it changes nothing

    def visit_Call(self, node: ast.Call) -> None:
        _check_opaque(node)
        magic = _magic_call(node)
        if magic is not None:
            self._magic(*magic)
            return
        func = node.func
        if isinstance(func, ast.Attribute):
            name = _root(func)
            if name is not None:
                self.visit(func)
                self.maybe[name] = None
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    self.visit(arg)
                return
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ("user_ns", "user_global_ns"):
            raise _Unknown(f"the shell's {node.attr} reads or writes names it cannot see")
        self.generic_visit(node)

    def _magic(self, kind: str, name: str, code: str | None) -> None:
        if name in _PLAIN_MAGICS:
            return
        if name in _CODE_MAGICS and code is not None:
            inner = analyse(code, self.transform)
            if inner.unknown:
                raise _Unknown(inner.unknown)
            for n in inner.reads:
                self._load(n)
            for n in inner.binds:
                self._store(n)
            self.mutates.update(dict.fromkeys(inner.mutates))
            self.maybe.update(dict.fromkeys(inner.maybe))
            return
        sign = "%%" if kind == "run_cell_magic" else "%"
        raise _Unknown(f"{sign}{name} runs code it cannot read")

    def _nested(self, scope: _Scope, name: str | None) -> None:
        free, stores = scope.free()
        for n in free:
            self._load(n)
        for n in stores:
            self._load(n)
            self._store(n)
        if name is not None:
            self._store(name)

    def _comprehension(self, node: ast.AST, elts: list[ast.expr]) -> None:
        self.visit(node.generators[0].iter)  # type: ignore[attr-defined]
        inner = _comprehension_scope(node, elts)
        walrus = _walruses(node)
        self._nested(inner, None)
        for name in walrus:
            self._store(name)

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        for case in node.cases:
            for sub in ast.walk(case.pattern):
                if isinstance(sub, ast.MatchValue):
                    self.visit(sub.value)
                elif isinstance(sub, ast.MatchClass):
                    self.visit(sub.cls)
                bound = getattr(sub, "name", None) or getattr(sub, "rest", None)
                if isinstance(bound, str):
                    self._store(bound)
            if case.guard is not None:
                self.visit(case.guard)
            for stmt in case.body:
                self.visit(stmt)


def _magic_call(node: ast.Call) -> tuple[str, str, str | None] | None:
    """``get_ipython().run_line_magic('time', 'x = f()')``: kind, magic name, its code."""
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and func.attr in ("run_line_magic", "run_cell_magic", "system", "getoutput")
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "get_ipython"
    ):
        return None
    if func.attr in ("system", "getoutput"):
        return func.attr, func.attr, None
    consts = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
    name = consts[0] if consts and isinstance(consts[0], str) else "?"
    code = consts[-1] if len(consts) >= 2 and isinstance(consts[-1], str) else None
    if func.attr == "run_line_magic" and name == "time" and code is not None:
        code = code.strip()
    return func.attr, name, code


def _shell_name(name: str) -> bool:
    return name in _SHELL_NAMES or _SHELL_NAME.match(name) is not None


@lru_cache(maxsize=512)
def analyse(source: str, transform: Callable[[str], str] | None = None) -> CellFlow:
    """What ``source`` reads and writes; ``unknown`` says why when it cannot tell.

    >>> analyse("df['y'] = df.x * k\\nn = len(df)")
    CellFlow(reads=('df', 'k', 'len'), binds=('n',), mutates=('df',), maybe=(), unknown=None)
    """
    tree = cell_tree(source, transform)
    if tree is None:
        return CellFlow(unknown="syntax it cannot read")
    visitor = _CellVisitor(transform)
    try:
        for stmt in tree.body:
            visitor.visit(stmt)
    except _Unknown as why:
        return CellFlow(unknown=str(why))
    except RecursionError:
        return CellFlow(unknown="code nested too deeply to read")

    def keep(names: Iterable[str]) -> tuple[str, ...]:
        return tuple(n for n in names if not _shell_name(n))

    return CellFlow(
        reads=keep(visitor.reads),
        binds=keep(visitor.binds),
        mutates=keep(visitor.mutates),
        maybe=keep(n for n in visitor.maybe if n not in visitor.binds),
    )


# -- values and versions -----------------------------------------------------------------------

_SCALARS = (bool, int, float, complex, type(None))


def _small(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, (str, bytes)):
        return len(value) <= _SMALL_TEXT
    if depth < 2 and type(value) in (tuple, list, frozenset, set):
        return len(value) <= _SMALL_SEQUENCE and all(_small(v, depth + 1) for v in value)
    if depth < 2 and type(value) is dict:
        return len(value) <= _SMALL_SEQUENCE and all(
            _small(k, depth + 1) and _small(v, depth + 1) for k, v in value.items()
        )
    return False


def fingerprint(value: Any) -> str | None:
    """A short hash of a value when it is cheap to take (scalars, short text, small
    containers and arrays, modules); None otherwise."""
    try:
        if _small(value):
            text = f"{type(value).__name__}:{value!r}"
        elif isinstance(value, types.ModuleType):
            return f"module:{value.__name__}"[:40]
        elif type(value).__name__ == "ndarray" and type(value).__module__ == "numpy":
            if value.nbytes > _SMALL_ARRAY_BYTES or value.dtype.hasobject:
                return None
            digest = hashlib.sha1(f"{value.dtype}{value.shape}".encode())
            digest.update(value.tobytes())
            return digest.hexdigest()[:12]
        else:
            return None
    except Exception:
        return None
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _is_code_object(value: Any) -> bool:
    """Modules, classes and functions: a method call on them changes no data."""
    return isinstance(
        value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)
    )


@dataclass
class Writer:
    """The run that last wrote a name in this kernel."""

    record_id: str
    cell_id: str | None
    source_hash: str
    version: str
    fingerprint: str | None


@dataclass
class FlowRecord:
    """What ``DataflowTracker.observe`` found for one run."""

    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    #: upstream record id -> {name: version read}
    upstream: dict[str, dict[str, str]] = field(default_factory=dict)
    #: name -> version written
    written: dict[str, str] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    #: project file -> version, for the files read that no run of this kernel wrote
    files: dict[str, str] = field(default_factory=dict)
    unknown: str | None = None

    def tags(self) -> dict[str, str]:
        """The run's ``mlops.reads``, ``mlops.writes`` and ``mlops.dataflow`` tags."""
        if self.unknown is not None:
            return {"mlops.dataflow": json.dumps({"unknown": self.unknown})}
        return {
            "mlops.reads": name_list(self.reads),
            "mlops.writes": name_list(self.writes),
            "mlops.dataflow": self._json(),
        }

    def _json(self) -> str:
        body: dict[str, Any] = {"u": self.upstream, "w": self.written}
        if self.params:
            body["p"] = self.params
        if self.files:
            body["f"] = self.files
        text = json.dumps(body, separators=(",", ":"))
        if len(text) <= TAG_LIMIT:
            return text
        # keep what fits, and say the rest was dropped: staleness then sees part of it
        kept: dict[str, Any] = {"u": {}, "w": {}, "f": {}, "t": 1}
        size = 40
        for path, ver in self.files.items():
            size += len(path) + len(ver) + 6
            if size > TAG_LIMIT // 4:
                break
            kept["f"][path] = ver
        for rec, names in self.upstream.items():
            for name, ver in names.items():
                size += len(rec) + len(name) + len(ver) + 12
                if size > TAG_LIMIT // 2:
                    break
                kept["u"].setdefault(rec, {})[name] = ver
        for name, ver in self.written.items():
            size += len(name) + len(ver) + 6
            if size > TAG_LIMIT - 200:
                break
            kept["w"][name] = ver
        return json.dumps(kept, separators=(",", ":"))


def name_list(names: list[str], limit: int = TAG_LIMIT) -> str:
    """``a,b,c``; past ``limit`` characters cut at a name, ending ``…(+N more)``."""
    text = ",".join(names)
    if len(text) <= limit:
        return text
    out: list[str] = []
    size = 0
    for name in names:
        if size + len(name) + 1 > limit - 20:
            break
        out.append(name)
        size += len(name) + 1
    return ",".join(out) + f",…(+{len(names) - len(out)} more)"


def _version(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:12]


class DataflowTracker:
    """The kernel's map of name -> the run that last wrote it, and each run's flow."""

    def __init__(self, keep: int = 10_000) -> None:
        self.writers: dict[str, Writer] = {}
        #: this session's runs, oldest first, for ``jupyter_mlops.stale()``
        self.runs: deque[FlowRun] = deque(maxlen=keep)

    def observe(
        self,
        flow: CellFlow,
        *,
        record_id: str,
        cell_id: str | None,
        source_hash: str,
        namespace: Mapping[str, Any],
        params: Iterable[str] = (),
        digests: Mapping[str, str] | None = None,
        bound: Iterable[str] | None = None,
        start: int = 0,
        execution_count: Any = None,
        source: str = "",
        files: Iterable[Mapping[str, Any]] = (),
    ) -> FlowRecord:
        """Record one finished (or failed) run and move the map on.

        ``bound``: for a failed cell, the names it is known to have bound (the others it
        may bind were never reached); None for a finished cell. ``files``: what
        ``FileWatch.stop`` found; a file is the name ``file:PATH``, so a cell that reads a
        file another cell wrote reads from that cell.
        """
        run = FlowRun(
            record_id,
            start,
            cell_id,
            source_hash,
            None if execution_count is None else str(execution_count),
            source,
        )
        self.runs.append(run)
        if flow.unknown is not None:
            run.unknown = flow.unknown
            return FlowRecord(unknown=flow.unknown)
        writers = self.writers
        reads = [n for n in flow.reads if n in namespace or n in writers or n not in _BUILTINS]
        out = FlowRecord(reads=list(reads))
        written_files: dict[str, str] = {}
        for entry in files:
            name = FILE_PREFIX + entry["path"]
            version = entry.get("version") or "deleted"
            if entry["mode"] != "r":
                written_files[name] = version
                continue
            out.reads.append(name)
            writer = writers.get(name)
            if writer is not None and writer.version == version:
                out.upstream.setdefault(writer.record_id, {})[name] = version
            else:
                # written outside this kernel (or changed since): its version now is the input
                out.files[entry["path"]] = version
        for name in reads:
            writer = writers.get(name)
            if writer is not None:
                out.upstream.setdefault(writer.record_id, {})[name] = writer.version
        inputs = "\0".join(
            [f"{n}={v}" for names in out.upstream.values() for n, v in sorted(names.items())]
            + [f"{FILE_PREFIX}{p}={v}" for p, v in sorted(out.files.items())]
        )
        binds = flow.binds
        if bound is not None:
            reached = set(bound)
            binds = tuple(n for n in binds if n in reached)
        digests = digests or {}
        params = set(params)
        for kind, names in (("b", binds), ("m", flow.mutates), ("x", flow.maybe)):
            for name in names:
                if name in out.written:
                    continue
                value = namespace.get(name, _DELETED)
                if kind == "x" and _is_code_object(value):
                    continue  # np.mean(x) changes no data held in np
                fp = digests.get(name) or ("deleted" if value is _DELETED else fingerprint(value))
                before = writers.get(name)
                if kind == "x" and fp is not None and before and before.fingerprint == fp:
                    continue  # a method call that left a small value as it was
                version = _version(source_hash, fp) if fp else _version(source_hash, inputs)
                out.written[name] = version
                writers[name] = Writer(record_id, cell_id, source_hash, version, fp)
                if name in params:
                    out.params.append(name)
        for name, version in written_files.items():
            out.written[name] = version
            writers[name] = Writer(record_id, cell_id, source_hash, version, None)
        out.writes = list(out.written)
        run.upstream, run.written, run.params = out.upstream, out.written, frozenset(out.params)
        run.files = out.files
        return out


_DELETED = object()
