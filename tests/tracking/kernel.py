"""Driving a live kernel from a test: run code, collect what it printed."""

from __future__ import annotations


def execute(kc: object, code: str, timeout: float = 180, stream: str | None = None) -> str:
    """Run ``code`` in the kernel and return what it printed (only to ``stream`` if given:
    "stdout" or "stderr"); the cell itself must succeed.

    A print can reach the client as several stream messages on a busy machine (the text,
    then its newline), so the pieces are joined before anyone parses them."""
    out: list[str] = []

    def grab(msg: dict) -> None:
        if msg["msg_type"] == "stream" and stream in (None, msg["content"].get("name")):
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, output_hook=grab, timeout=timeout)  # type: ignore[attr-defined]
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)
