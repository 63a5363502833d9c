"""Keeps secrets in the kernel: which bound values are secrets, and cell source without them.

A value is a secret when detect-secrets' plugins recognise it (cloud keys, GitHub, Slack and
OpenAI tokens, private keys, JWTs, ...), when it is a long random-looking string, when it
carries a password inside a URI (``postgresql://user:PASSWORD@host``), when it equals a
secret-looking environment variable of the kernel, when it matches one of
``mlops.yaml``'s ``tracking.secret_patterns``, or when the name it is bound to looks secret
(``api_key``, ``dbPassword``, ``client_secret``, ``github_token``).

Secret values are not logged as params; in source and free text the secret part of a
literal becomes ``***``. detect-secrets takes a quarter of a second to import, so it loads
on a background thread when the first ``Redactor`` is built; checks wait for it only if a
cell finishes before it is ready.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ..config import TrackingSettings
from .capture import MASKED_REASON
from .secret_names import PLACEHOLDER, name_looks_secret

__all__ = ["MASK", "MASKED_REASON", "Redactor", "name_looks_secret"]

MASK = "***"

# -- detectors ---------------------------------------------------------------------------

#: ``scheme://user:PASSWORD@host``; group 2 is the password
_URI_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)([^\s@/'\"]+)(@)")
#: a PEM private key block, header to footer
_PEM_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY"
    r"(?: BLOCK)?-----",
    re.DOTALL,
)
_PEM_OPEN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*", re.DOTALL)
#: ``NAME=value`` / ``NAME: value`` in text that is not Python (``%env``, ``!cmd``, messages)
_ASSIGNMENT = re.compile(r"([A-Za-z_][\w.-]*)\s*[=:]\s*(['\"]?)([^\s'\",;)]+)\2")
#: a word that may hold a token: 12+ characters between spaces, quotes and brackets
_CANDIDATE = re.compile(r"[^\s'\"`,;()\[\]{}<>]{12,}")
_WORD_SPLIT = re.compile(r"[\s'\"`,;()\[\]{}=]+")
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=")
#: a cell that may set environment variables (reading os.environ costs ~100 us, so only then)
_ENV_WRITE = re.compile(
    r"environ\s*\[[^\]]*\]\s*=|environ\.(?:update|setdefault)|putenv|%env|%set_env|load_dotenv"
)
#: longer values are checked each time rather than held in the verdict cache
_CACHED_VALUE = 1024
#: environment values shorter than this are too common to mask everywhere
MIN_ENV_SECRET = 8
#: known secret values shorter than this are masked in literals only, not in free text
MIN_TEXT_SECRET = 6
#: detect-secrets plugins that are not whole-value detectors for us: public IPs are not
#: secrets, keywords and URIs are handled with their context here, hex entropy flags run ids
_SKIPPED_PLUGINS = frozenset(
    {
        "IPPublicDetector",
        "KeywordDetector",
        "BasicAuthDetector",
        "HexHighEntropyString",
        "Base64HighEntropyString",
    }
)

_BLOCK_PLUGINS = frozenset({"PrivateKeyDetector"})


def _matches(plugin: Any, text: str) -> Iterator[str]:
    """The whole text each of a plugin's patterns matched, once the plugin says it found one.

    A plugin yields a pattern's groups when it has some (``ghp`` of a GitHub token); the
    mask must cover the whole token.
    """
    if next(iter(plugin.analyze_string(text)), None) is None:
        return
    for regex in plugin.denylist:
        for match in regex.finditer(text):
            yield match.group(0)


_LOAD_SWITCH_INTERVAL = 0.0005


class _Detectors:
    """detect-secrets' regex plugins and its base64 entropy measure, loaded once per process."""

    def __init__(self) -> None:
        self.plugins: list[Any] = []
        #: plugins whose patterns span words (a private key's header): run on whole text
        self.block_plugins: list[Any] = []
        self.entropy: Any = None
        self.error: str | None = None
        self._words: dict[str, tuple[str, ...]] = {}
        self._ready = threading.Event()
        threading.Thread(target=self._load, name="jupyter-mlops-secrets", daemon=True).start()

    def _load(self) -> None:
        # importing detect-secrets takes about 0.3 s of Python; while it runs, cells started
        # meanwhile would wait up to the interpreter's switch interval (5 ms) for the GIL at
        # each blocking call, so the interval is short until the import is done
        before = sys.getswitchinterval()
        sys.setswitchinterval(min(before, _LOAD_SWITCH_INTERVAL))
        try:
            from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
            from detect_secrets.plugins.base import RegexBasedDetector
            from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

            classes: Any = get_mapping_from_secret_type_to_class().values()
            for cls in sorted(classes, key=lambda c: c.__name__):
                if issubclass(cls, RegexBasedDetector) and cls.__name__ not in _SKIPPED_PLUGINS:
                    group = self.block_plugins if cls.__name__ in _BLOCK_PLUGINS else self.plugins
                    group.append(cls())
            self.entropy = Base64HighEntropyString()
        except Exception as err:  # a broken install must not stop tracking
            self.error = f"{type(err).__name__}: {err}"
        finally:
            if sys.getswitchinterval() == min(before, _LOAD_SWITCH_INTERVAL):
                sys.setswitchinterval(before)
            self._ready.set()

    def wait(self) -> None:
        self._ready.wait()

    def find(self, text: str) -> Iterator[str]:
        """Secret substrings of ``text`` that a plugin recognises.

        Plugins run on each long word alone, not on the whole text: every token format they
        know is one unbroken word of 12 or more characters, and a few plugins' context
        regexes cost ~50 us per 400 characters of text. Words are cached.
        """
        if "PRIVATE KEY" in text or "PuTTY-User-Key" in text:
            self._ready.wait()
            for plugin in self.block_plugins:
                yield from _matches(plugin, text)
        for word in _CANDIDATE.findall(text):
            found = self._words.get(word)
            if found is None:
                self._ready.wait()
                found = tuple(m for plugin in self.plugins for m in _matches(plugin, word))
                if len(self._words) > 8192:
                    self._words.clear()
                self._words[word] = found
            yield from found

    def high_entropy(self, value: str) -> bool:
        """A long base64-alphabet string with mixed case and digits, random-looking.

        Paths with dots, model names and words never pass: they are short, lack a class of
        characters or repeat their letters (entropy at most 4.5 bits, detect-secrets' limit).
        """
        if not 20 <= len(value) <= 512 or not _BASE64_CHARS.issuperset(value):
            return False
        if not (
            any(c.isdigit() for c in value)
            and any(c.isupper() for c in value)
            and any(c.islower() for c in value)
        ):
            return False
        self._ready.wait()
        if self.entropy is None:
            return False
        return bool(self.entropy.calculate_shannon_entropy(value) > self.entropy.entropy_limit)


_shared: _Detectors | None = None
_shared_lock = threading.Lock()


def _detectors() -> _Detectors:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _Detectors()
        return _shared


# -- literals of a cell ------------------------------------------------------------------

#: one lexer pass in C: a comment, or a string literal (prefix, quotes, body); a ``#`` or a
#: quote inside a string is consumed with it, so every match is a real token
_TOKEN = re.compile(
    r"(?P<comment>\#[^\n]*+)"
    r"|(?P<prefix>\b[rRbBuUfF]{1,2})?(?:"
    r"\'\'\'(?P<b3s>(?:[^\'\\]++|\\.|\'(?!\'\'))*+)\'\'\'"
    r'|"""(?P<b3d>(?:[^"\\]++|\\.|"(?!""))*+)"""'
    r"|\'(?P<b1s>(?:[^\'\\\n]++|\\.)*+)\'"
    r'|"(?P<b1d>(?:[^"\\\n]++|\\.)*+)")',
    re.DOTALL,
)
_BODIES = ("b3s", "b3d", "b1s", "b1d")
#: what precedes a literal bound to a name, read backwards from the literal (a regex can
#: only anchor forwards): ``name =``, ``obj.name=``, ``name: str =``, ``name ==``, ``f(name=``
_NAME_BEFORE_REVERSED = re.compile(
    r"\s*(?:=|=:|==|=!)\s*(?:[\w\[\]., |]+?\s*:)?\s*(\w*[A-Za-z_])(?!\w)"
)
#: between a key literal and its value: ``"k": "v"``, ``d["k"] = "v"``, ``f("k", "v")``
_KEY_GAP = re.compile(r"\s*(?::|\]\s*=|,)\s*$")
#: lines of IPython syntax, where ``NAME=value`` has no quotes: ``%env``, ``!cmd``
_SHELL_LINE = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def _literals(source: str) -> Iterator[tuple[int, int, str, str | None]]:
    """Each string literal's body span, body and the name it is bound to, if any."""
    prev_body: str | None = None
    prev_end = -1
    for match in _TOKEN.finditer(source):
        if match.group("comment") is not None:
            continue
        group = next(g for g in _BODIES if match.group(g) is not None)
        body = match.group(group)
        begin = match.start()
        name: str | None = None
        if prev_body is not None and _KEY_GAP.fullmatch(source, prev_end, begin):
            name = prev_body
        else:
            # only the end of the line before the literal can name it: search a short tail
            tail = source[max(source.rfind("\n", 0, begin) + 1, begin - 100) : begin]
            if "=" in tail:
                before = _NAME_BEFORE_REVERSED.match(tail[::-1])
                if before is not None:
                    name = before.group(1)[::-1]
        yield match.start(group), match.end(group), body, name
        prev_body, prev_end = body, match.end()


class Redactor:
    """Decides what is a secret in one kernel and masks it; counts what it masked.

    >>> from jupyter_mlops.config import TrackingSettings
    >>> r = Redactor(TrackingSettings(), environ={})
    >>> r.is_secret("api_key", "abc123"), r.is_secret("optimizer", "adam")
    (True, False)
    >>> r.mask_source('db = "postgresql://me:hunter2@db:5432/x"')
    'db = "postgresql://me:***@db:5432/x"'
    """

    def __init__(self, settings: TrackingSettings, environ: Mapping[str, str] | None = None):
        #: values and literals masked so far in this kernel (``%mlops status``)
        self.masked = 0
        self._patterns = tuple(re.compile(p) for p in settings.secret_patterns)
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._env_size = -1
        self._env_values: frozenset[str] = frozenset()
        self._env_seen: dict[str, str] = {}
        #: secret values met in this kernel, so later text that repeats them is masked too
        self._known: set[str] = set()
        self._verdicts: dict[str, bool] = {}
        self._sources: dict[str, tuple[str, int]] = {}
        self._detectors = _detectors()
        self.refresh_environment()

    @property
    def detector_error(self) -> str | None:
        """Why detect-secrets could not be loaded (the other checks still run)."""
        self._detectors.wait()
        return self._detectors.error

    # -- environment ----------------------------------------------------------------------
    def refresh_environment(self, force: bool = False) -> None:
        """Re-read secret-looking environment variables when they changed.

        Without ``force`` only a change in their number is noticed (one ``len``, cheap enough
        for every value); ``force`` compares every variable, for cells that mention ``env``.
        """
        size = len(self._environ)
        if size == self._env_size and not force:
            return
        current = dict(self._environ)
        if current == self._env_seen:
            return
        self._env_size, self._env_seen = size, current
        values = set()
        for name, value in current.items():
            if len(value) < MIN_ENV_SECRET:
                continue
            if name_looks_secret(name):
                values.add(value)
            if "://" in value:
                for match in _URI_PASSWORD.finditer(value):
                    if len(match.group(2)) >= MIN_ENV_SECRET:
                        values.add(match.group(2))
        if values != self._env_values:
            self._env_values = frozenset(values)
            self._sources.clear()

    # -- values ---------------------------------------------------------------------------
    def is_secret(self, name: str, value: object) -> bool:
        """Whether ``value``, bound to ``name``, must not leave the kernel."""
        if not isinstance(value, str) or not value:
            return False
        self.refresh_environment()
        if value in self._env_values or (len(value) >= MIN_TEXT_SECRET and value in self._known):
            return True
        secret = (
            name_looks_secret(name) and not PLACEHOLDER.match(value)
        ) or self._value_is_secret(value)
        if secret:
            self._remember(value)
        return secret

    def _value_is_secret(self, value: str) -> bool:
        verdict = self._verdicts.get(value)
        if verdict is None:
            verdict = (
                _URI_PASSWORD.search(value) is not None
                or any(p.search(value) for p in self._patterns)
                or self._detectors.high_entropy(value)
                or next(self._detectors.find(value), None) is not None
            )
            if len(value) <= _CACHED_VALUE:  # a cache must not keep big strings alive
                if len(self._verdicts) > 4096:
                    self._verdicts.clear()
                self._verdicts[value] = verdict
        return verdict

    def _remember(self, value: str) -> None:
        if value not in self._known:
            self._known.add(value)
            self._sources.clear()  # cached sources may repeat it unmasked

    # -- text -----------------------------------------------------------------------------
    def mask_source(self, source: str) -> str:
        """``source`` with every secret literal (or the secret part of one) as ``***``."""
        if "env" in source and _ENV_WRITE.search(source):
            self.refresh_environment(force=True)  # a value may have changed, not their number
        cached = self._sources.get(source)
        if cached is None:
            cached = self._mask_source(source)
            if len(self._sources) > 256:
                self._sources.clear()
            self._sources[source] = cached
        self.masked += cached[1]
        return cached[0]

    def peek_source(self, source: str) -> str:
        """``mask_source`` that counts nothing: the live view of a running cell, whose source
        is masked (and counted) again when the cell is recorded."""
        cached = self._sources.get(source)
        return (cached or self._mask_source(source))[0]

    def mask_text(self, text: str) -> str:
        """Any free text (an error message, a tag value) with secrets as ``***``."""
        masked, count = self._mask_text(text, assignments=True)
        self.masked += count
        return masked

    def _mask_source(self, source: str) -> tuple[str, int]:
        count = 0
        pieces: list[str] = []
        done = 0
        for begin, end, body, name in _literals(source):
            if not body:
                continue
            if self.is_secret(name or "", body) or _PEM_BLOCK.search(body):
                if _URI_PASSWORD.search(body):
                    continue  # the text pass masks just the password
                masked = MASK
            else:
                if not self._patterns and not any(k in body for k in self._known):
                    continue
                words = [w for w in body.split() if self._known_word(w) or self._matches(w)]
                if not words:
                    continue
                masked = body
                for word in words:
                    masked = masked.replace(word, MASK)
            pieces += [source[done:begin], masked]
            done = end
            count += 1
        if pieces:
            source = "".join(pieces) + source[done:]
        masked_text, more = self._mask_text(source, assignments=False)
        if "%" in masked_text or "!" in masked_text:
            shell = [0]

            def one_line(line: re.Match[str]) -> str:
                text, n = self._mask_text(line.group(0), assignments=True)
                shell[0] += n
                return text

            masked_text = _SHELL_LINE.sub(one_line, masked_text)
            more += shell[0]
        return masked_text, count + more

    def _known_word(self, word: str) -> bool:
        # a short secret ("abc") repeated elsewhere is more likely an ordinary word there
        return len(word) >= MIN_TEXT_SECRET and word in self._known

    def _matches(self, word: str) -> bool:
        return any(p.search(word) for p in self._patterns)

    def _mask_text(self, text: str, *, assignments: bool) -> tuple[str, int]:
        count = 0
        if "PRIVATE KEY" in text:
            text, n = _PEM_BLOCK.subn(MASK, text)
            if "PRIVATE KEY-----" in text:  # a block without its footer: mask to the end
                text, more = _PEM_OPEN.subn(MASK, text)
                n += more
            count += n
        if "://" in text:
            text, n = _URI_PASSWORD.subn(rf"\1{MASK}\3", text)
            count += n
        found = set(self._detectors.find(text))
        found.update(v for v in self._env_values if v in text)
        found.update(v for v in self._known if len(v) >= MIN_TEXT_SECRET and v in text)
        if assignments:  # free text: no literals to check patterns on, so check every word
            if self._patterns:
                found.update(w for w in _WORD_SPLIT.split(text) if self._matches(w))
            for match in _ASSIGNMENT.finditer(text):
                if name_looks_secret(match.group(1)) and not PLACEHOLDER.match(match.group(3)):
                    found.add(match.group(3))
        for secret in sorted(found, key=len, reverse=True):
            if secret and secret != MASK and secret in text:
                text = text.replace(secret, MASK)
                count += 1
        return text, count
