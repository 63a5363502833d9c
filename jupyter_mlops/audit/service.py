"""``audit()``: one model version, from its deployment (or one captured request) back to the
cells that trained it, written as a self-contained HTML report and a Markdown twin."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

from .. import store
from ..config import Settings, load_settings
from ..exceptions import UsageError
from .collect import collect, require_alias
from .facts import AuditReport
from .redact import redact
from .render_html import render_html
from .render_markdown import render_markdown

#: where reports go when no ``out`` is given, inside the project
DEFAULT_DIR = "audits"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _file_stem(model: str, version: str, request: str | None) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    parts = [model, f"v{version}"] + ([f"request-{request[:40]}"] if request else []) + [stamp]
    return _UNSAFE.sub("_", "-".join(parts))


def audit(
    spec: str | None = None,
    *,
    out: str | Path | None = None,
    request: str | None = None,
    settings: Settings | None = None,
) -> AuditReport:
    """Write the audit of ``spec`` (``model@alias`` or ``model/version``), or of the version
    that answered the captured ``request``, to ``out`` (a directory inside the project,
    ``audits/`` by default): ``<model>-v<n>-<time>.html`` and ``.md``.

    >>> report = jupyter_mlops.audit("digits@champion")  # doctest: +SKIP
    >>> report.html  # doctest: +SKIP
    '/home/me/project/audits/digits-v3-20261203T101500Z.html'
    """
    from ..registry.service import require_version
    from ..serving.manager import parse_spec

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = settings or load_settings()
    if spec is None and request is None:
        raise UsageError("audit needs MODEL@ALIAS, MODEL/VERSION or --request ID")
    directory = settings.resolve_inside(out if out is not None else DEFAULT_DIR)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{out}: not a directory (the report is written into one)")
    client = store.client(settings)
    alias = version = None
    found = None
    if request is not None:
        from .request import find_request

        model, found = find_request(settings, request)
        version = found.version
        if spec is not None and parse_spec(spec)[0] != model:
            raise UsageError(
                f"request {request!r} was answered by {model} v{version}, not by {spec}"
            )
    else:
        assert spec is not None
        if "@" not in spec and "/" not in spec:
            raise UsageError(f"audit {spec}: write MODEL@ALIAS or MODEL/VERSION")
        model, alias, version = parse_spec(spec)
        if alias is not None:
            version = require_alias(client, model, alias)
    assert version is not None
    require_version(client, model, version)
    facts = redact(collect(settings, model, str(version), alias, found), settings)
    directory.mkdir(parents=True, exist_ok=True)
    stem = _file_stem(model, str(version), request)
    html_path = directory / f"{stem}.html"
    md_path = directory / f"{stem}.md"
    html_path.write_text(render_html(facts), encoding="utf-8")
    md_path.write_text(render_markdown(facts), encoding="utf-8")
    return AuditReport(str(html_path), str(md_path), facts)
