"""Small HTML tables for the panel's listings (escaped: names and messages come from users)."""

from __future__ import annotations

import html
from collections.abc import Sequence

_STYLE = (
    "border-collapse:collapse;font-size:var(--jp-ui-font-size1);"
    "font-family:var(--jp-ui-font-family)"
)
_CELL = "padding:2px 10px;text-align:left;border-bottom:1px solid var(--jp-border-color2)"
#: a tint of the theme's warning colour: --jp-warn-color3 is a pale orange in the dark theme
#: too, where the theme's light text on it could not be read
_SHADE = "background:color-mix(in srgb, var(--jp-warn-color1) 22%, transparent)"


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    empty: str = "nothing yet",
    highlight: Sequence[bool] | None = None,
    css_class: str = "",
    nowrap: bool = False,
) -> str:
    """An HTML table; rows flagged in ``highlight`` are shaded. ``nowrap`` keeps each row on
    one line (a narrow notebook scrolls the table sideways instead of stretching rows)."""
    if not rows:
        muted = "color:var(--jp-ui-font-color2)"
        return f'<p class="{css_class}" style="{muted}">{html.escape(empty)}</p>'
    cell = _CELL + (";white-space:nowrap" if nowrap else "")
    head = "".join(f'<th style="{cell}">{html.escape(h)}</th>' for h in header)
    body = []
    for i, row in enumerate(rows):
        shade = f' style="{_SHADE}"' if highlight and highlight[i] else ""
        cells = "".join(f'<td style="{cell}">{html.escape(str(c))}</td>' for c in row)
        body.append(f"<tr{shade}>{cells}</tr>")
    # wide tables scroll sideways inside the panel instead of being cut off
    return (
        f'<div style="overflow-x:auto"><table class="{css_class}" style="{_STYLE}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
