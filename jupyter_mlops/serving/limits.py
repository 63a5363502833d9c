"""Bounds on what a client can make the model server hold: body size, time, connections.

- A body is read in chunks and refused with a 413 the moment it passes the limit (or up
  front, from its ``Content-Length``), so a 400 MB upload never sits in memory.
- A body must arrive within ``BODY_TIMEOUT_S``, request headers within ``HEADER_TIMEOUT_S``
  of the connection opening or of the previous response; uvicorn has a keep-alive timeout
  but none for headers that trickle in, so ``GuardedHttpProtocol`` adds it.
- ``uvicorn_options()`` is what the server process passes to ``uvicorn.run``.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .model import RequestError
from .request_ids import RULE as REQUEST_ID_RULE

MAX_BODY_BYTES = 10 * 1024 * 1024
BODY_TIMEOUT_S = 30.0
HEADER_TIMEOUT_S = 10.0
#: request line and headers together; httptools itself sets no bound
MAX_HEADER_BYTES = 64 * 1024
#: beyond this many open connections uvicorn answers 503 instead of serving
MAX_CONNECTIONS = 200


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"request body over the limit of {limit} bytes", "REQUEST_TOO_LARGE")


async def read_body(request: Request, limit: int, timeout: float = BODY_TIMEOUT_S) -> bytes:
    """The whole body, or a 413 (over ``limit``), 408 (too slow) or 400 (a bad length)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise _too_large(limit)
    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(timeout):
                return await _gather(request, limit)
        return await asyncio.wait_for(_gather(request, limit), timeout)
    except TimeoutError:
        raise RequestError(
            408, f"the request body did not arrive within {timeout:g} s", "REQUEST_TIMEOUT"
        ) from None
    except ClientDisconnect:
        raise RequestError(400, "the client went away before sending its whole body") from None


async def _gather(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _base_protocol() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # uvicorn without httptools speaks h11
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


_Base: Any = _base_protocol()


class GuardedHttpProtocol(_Base):  # type: ignore[misc]
    """uvicorn's HTTP protocol, closing a connection whose request headers are too slow.

    A deadline starts when the connection opens and again after each response; it ends
    when a request's headers are complete (uvicorn then starts a new request cycle).
    """

    header_timeout = HEADER_TIMEOUT_S

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._received = b""
        self._arm()

    def _arm(self) -> None:
        self._waiting_after = self.cycle
        self._header_bytes = 0
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def data_received(self, data: bytes) -> None:
        waiting = self._deadline is not None
        self._received = data  # what a parse error is about, for its message
        super().data_received(data)
        if waiting and self.cycle is not self._waiting_after:
            self._disarm()  # the headers of a new request are complete
        elif waiting and not getattr(self.cycle, "more_body", False):
            # (the rest of a body answered early, say with a 413, is not header bytes)
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._refuse(b"431 Request Header Fields Too Large", b"request headers too large")

    def send_400_response(self, msg: str) -> None:
        """The parser refused the request: say which header, when a header is why."""
        super().send_400_response(header_problem(self._received) or msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a (pipelined) request is being answered: its headers were not slow
        self._refuse(b"408 Request Timeout", b"request headers took too long")

    def _refuse(self, status: bytes, text: bytes) -> None:
        self._disarm()
        if self.cycle is self._waiting_after:  # no response under way that this would corrupt
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain\r\ncontent-length: "
                + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
            )  # fmt: skip
        self.transport.close()


#: what HTTP parsers refuse in a header value (a tab is allowed)
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(data: bytes) -> str | None:
    """Which request header in ``data`` holds a control character, in words (ASCII)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:  # after the request line
        name, sep, value = line.partition(b":")
        value = value.lstrip(b" \t")
        found = _CONTROL.search(value) if sep else None
        if found is None:
            continue
        header = name.strip().decode("ascii", "backslashreplace")
        where = f"a control character (0x{found.group()[0]:02x}) at position {found.start()}"
        if header.lower() == "x-request-id":
            return f"X-Request-ID has {where}; {REQUEST_ID_RULE}"
        return f"request header {header!r} has {where}; header values cannot hold one"
    return None


def uvicorn_options(
    header_timeout: float = HEADER_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` that bound slow and many
    clients: ``uvicorn.run(app, host=..., port=..., **uvicorn_options())``."""
    protocol = type(
        "GuardedHttpProtocol", (GuardedHttpProtocol,), {"header_timeout": header_timeout}
    )
    return {
        "http": protocol,
        "timeout_keep_alive": 5,
        "limit_concurrency": max_connections,
        "backlog": 256,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "log_level": "warning",
        "access_log": False,
    }
