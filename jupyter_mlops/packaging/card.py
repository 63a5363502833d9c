"""The model card: what a reviewer needs to trust a packaged model, in markdown."""

from __future__ import annotations

from typing import Any


def _table(rows: dict[str, Any]) -> list[str]:
    if not rows:
        return ["(none recorded)"]
    lines = ["| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(rows.items())]
    return lines


def model_card(
    *,
    name: str,
    source_run_id: str,
    notebook: str | None,
    cell_record_id: str | None,
    params: dict[str, Any],
    metrics: dict[str, float],
    datasets: list[dict[str, Any]],
    parity: dict[str, Any],
    signature: dict[str, Any],
    opset: int,
    size_bytes: int,
    quantization: dict[str, Any] | None = None,
) -> str:
    lines = [
        f"# Model card: {name}",
        "",
        "## Source",
        f"- run: `{source_run_id}`",
        f"- notebook: `{notebook or 'unknown'}`",
    ]
    if cell_record_id:
        lines.append(f"- cell run: tag `mlops.record_id = {cell_record_id}`")
    lines += ["", "## Parameters", *_table(params), "", "## Metrics", *_table(metrics), ""]
    lines.append("## Datasets")
    if datasets:
        lines += ["| name | digest | rows |", "|---|---|---|"]
        lines += [f"| {d.get('name')} | {d.get('digest')} | {d.get('rows')} |" for d in datasets]
    else:
        lines.append("(none recorded)")
    lines += [
        "",
        "## Package",
        "- format: ONNX, single file, dynamic batch axis"
        + "".join(f", dynamic {axis}" for axis in parity.get("axis_sizes", {})),
        f"- opset: {opset}",
        f"- size: {size_bytes} bytes" + (" (quantized)" if quantization else ""),
        "",
        "## Signature",
        "| role | name | dtype | shape |",
        "|---|---|---|---|",
    ]
    for role in ("inputs", "outputs"):
        for spec in signature.get(role, []):
            lines.append(f"| {role[:-1]} | {spec['name']} | {spec['dtype']} | {spec['shape']} |")
    lines += [
        "",
        "## Parity (ONNX Runtime vs the trained model)",
        f"- passed: {parity['passed']}",
        f"- max absolute difference: {parity['max_abs_diff']:.3g}",
        f"- max relative difference: {parity['max_rel_diff']:.3g}",
        f"- tolerance: {parity['tolerance']:g}",
        f"- batch sizes checked: {parity['batch_sizes']}",
    ]
    for axis, sizes in parity.get("axis_sizes", {}).items():
        lines.append(f"- {axis} sizes checked: {sizes}")
    lines += [f"- {note}" for note in parity.get("checked", [])]
    if quantization:
        q = quantization["parity"]
        lines += [
            "",
            "## Quantization (the served model)",
            f"- {quantization['mode']} quantization, {quantization['weight_type']} weights "
            f"({quantization['quantized_weights']} weight tensors)",
            f"- size: {quantization['size_bytes']} bytes "
            f"(float model: {quantization['float_size_bytes']} bytes, artifact model.float.onnx)",
            f"- passed: {q['passed']}",
            f"- max absolute difference: {q['max_abs_diff']:.3g}",
            f"- max relative difference: {q['max_rel_diff']:.3g}",
            f"- quantized tolerance: {q['tolerance']:g}",
        ]
    lines.append("")
    return "\n".join(lines)
