"""Secret-looking config values never reach the tracking store: keys named like token, secret, password or key are
masked in params, run names and the logged config."""

from __future__ import annotations

import re
from typing import Any, Mapping

# A name looks like a secret when one of its words (split on . _ - and camelCase) is one of these; "tokens" (a data
# size) is not "token".
SECRET_WORDS = {"token", "secret", "password", "passwd", "key", "apikey", "credential", "credentials"}
MASK = "***"


def is_secret(name: str) -> bool:
    words = re.split(r"[._\-\s]+|(?<=[a-z])(?=[A-Z])", str(name))
    return any(word.lower() in SECRET_WORDS for word in words)


def mask_secrets(value: Any, name: str = "") -> Any:
    """A copy of a config with the value of every secret-looking key replaced by ***, at any depth."""
    if name and is_secret(name):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value
