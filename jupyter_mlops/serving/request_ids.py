"""Request ids: what joins a prediction to what is learnt about it later (a label, a complaint).

Every prediction request has one: the client's (``X-Request-ID`` on ``/invocations``, the
body's ``id`` on ``/v2/.../infer``) or a new ``uuid4().hex``. It goes back in the
``x-request-id`` response header and into the capture. A request of one instance keeps it
as is; the rows of a batch of n > 1 are ``<request id>-0`` to ``<request id>-<n-1>``, built
when the capture is read, so the request path pays for one uuid at most.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from .model import RequestError

HEADER = "x-request-id"
MAX_LENGTH = 128
#: printable ASCII: what an HTTP header carries back unchanged and a file name or URL can hold
_VALID = re.compile(r"[\x20-\x7e]{1,128}")
RULE = f"a request id is 1 to {MAX_LENGTH} printable ASCII characters"


#: a uuid4's version and variant bits, set in 128 random bits
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


#: ids made from one read of the system's random source: a system call per 256 requests
_BATCH = 256
_pool: list[int] = []
# a forked child must not hand out its parent's ids
os.register_at_fork(after_in_child=_pool.clear)


def new_request_id() -> str:
    """``uuid.uuid4().hex`` in a fraction of its time: no UUID object, and the random bits of
    256 ids read from ``os.urandom`` at once (the same source, so the same unpredictability).
    Only the event loop's thread makes ids; ``list.pop`` is atomic besides."""
    try:
        bits = _pool.pop()
    except IndexError:
        block = os.urandom(16 * _BATCH)
        _pool.extend(int.from_bytes(block[i : i + 16], "big") for i in range(0, len(block), 16))
        bits = _pool.pop()
    return "%032x" % (bits & _CLEAR | _SET)


def request_id(given: str | None, what: str = "X-Request-ID") -> str:
    """``given`` when it is a valid id, a new one when it is absent or empty, else a 400."""
    if not given:
        return new_request_id()
    return check_request_id(given, what, header=True)


def check_request_id(given: str, what: str, header: bool = False) -> str:
    """``given``, or a 400 saying what is wrong with it (its length, a character)."""
    if _VALID.fullmatch(given):
        return given
    raise RequestError(400, _problem(given, what, header))


def _problem(given: str, what: str, header: bool) -> str:
    if len(given) > MAX_LENGTH:
        return f"{what} is {len(given)} characters long; {RULE}"
    at, char = next((i, c) for i, c in enumerate(given) if not " " <= c <= "~")
    if ord(char) < 32 or ord(char) == 127:
        return f"{what} has a control character (0x{ord(char):02x}) at position {at}; {RULE}"
    if header:  # a header's text is its bytes read as Latin-1: name the byte
        return f"{what} has a non-ASCII byte (0x{ord(char):02x}) at position {at}; {RULE}"
    return f"{what} has a non-ASCII character ({char!r}) at position {at}; {RULE}"


def row_ids(ids: Sequence[str | None], lengths: Sequence[int] | np.ndarray) -> list[str | None]:
    """One id per instance: a request's own id for a single instance, ``<id>-<i>`` in a batch,
    None for a request captured without one (by an earlier release)."""
    out: list[str | None] = []
    for rid, n in zip(ids, lengths, strict=True):
        if rid is None:
            out.extend([None] * int(n))
        elif n == 1:
            out.append(rid)
        else:
            out.extend(f"{rid}-{i}" for i in range(int(n)))
    return out
