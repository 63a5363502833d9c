"""Plain-text tables, readable in a terminal and in a notebook's output."""

from __future__ import annotations

from collections.abc import Sequence


def format_rows(header: Sequence[str], rows: Sequence[Sequence[str]], limit: int = 60) -> str:
    """Left-aligned columns, each cell clipped to ``limit`` characters."""

    def clip(text: str) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"

    table = [[clip(str(c)) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
