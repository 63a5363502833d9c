"""Whether a name says it holds a secret: ``api_key``, ``dbPassword``, ``GITHUB_TOKEN``.

Names are split into parts (``_``, ``-``, ``.``, camelCase, digits) and judged by parts, so
``monkey`` is not a key and ``max_tokens`` is not a token.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NAME_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: parts that make a name secret wherever they stand
_SECRET_PARTS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "credential",
        "credentials",
        "creds",
        "auth",
        "oauth",
        "authorization",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "authkey",
        "contrasena",
    }
)
#: ``<role>_token`` names a tokenizer's special token ("<pad>", "</s>"), not a credential
_TOKEN_ROLES = _words(
    "pad eos bos unk cls sep mask special start end stop eot eom fim sot bot image img audio "
    "vision video sentence added extra chat default decoder vocab max min num n total first "
    "last next prev"
)
#: ``<kind>_key`` names a lookup key (a column, a dict key, an S3 object), not a credential
_LOOKUP_KEYS = _words(
    "sort primary foreign partition join group groupby dict cache column col index hash lookup "
    "merge row map s3 object blob feature label target id unique composite shard dedup random "
    "rng prng seed sample json yaml config metadata meta state output input result file bucket "
    "table field item entry hot short cluster dataset data model run experiment"
)
#: a last part that makes the name refer to a secret rather than hold one (``api_key_env``)
_REFERENCE_SUFFIX = _words(
    "path paths file files filename dir env var name names field fields col column columns len "
    "length policy prompt required type types id ids count counts num size limit budget index "
    "idx method mode scheme provider kind enabled expiry expires ttl timeout pattern regex "
    "hint label format header_name"
)
#: a value that is a placeholder, not a secret: "<pad>", "[MASK]", "${TOKEN}", "***"
PLACEHOLDER = re.compile(r"^(?:<[^<>]*>|\[[^\[\]]*\]|\$\{?\w+\}?|\*+|\.\.\.)$")


@lru_cache(maxsize=4096)
def name_looks_secret(name: str) -> bool:
    """Whether a variable, key or argument name says it holds a secret.

    The name is split on ``_``, ``-``, ``.`` and camelCase, so ``dbPassword`` and
    ``GITHUB_TOKEN`` match but ``monkey``, ``keys_count`` and ``max_tokens`` do not.

    >>> name_looks_secret("client_secret"), name_looks_secret("pad_token")
    (True, False)
    """
    parts = [p.lower() for p in _NAME_PART.findall(name)]
    if not parts:
        return False
    if len(parts) > 1 and parts[-1] in _REFERENCE_SUFFIX:
        return False
    for i, part in enumerate(parts):
        before = parts[i - 1] if i > 0 else None
        if part in _SECRET_PARTS:
            return True
        if part == "token" and before not in _TOKEN_ROLES:
            return True
        if part == "key" and i == len(parts) - 1 and before and before not in _LOOKUP_KEYS:
            return True
        if part in ("pass", "pw") and before is not None:
            return True
    return False
