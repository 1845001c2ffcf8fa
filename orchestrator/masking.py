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


def mask_override(override: str) -> str:
    """`db.password=***` for a command-line override of a secret-looking key; any other override as it is."""
    key, sep, _ = override.partition("=")
    return f"{key}{sep}{MASK}" if sep and is_secret(key.lstrip("+~")) else override


def mask_secrets(value: Any, name: str = "") -> Any:
    """A copy of a config with the value of every secret-looking key replaced by ***, at any depth."""
    if name and is_secret(name):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value


# Values shorter than this are not hunted for in text: "1" or "true" in a secret-named variable is no secret.
MIN_SECRET_CHARS = 6


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of this process's environment variables whose names look like secrets (HF_TOKEN, AWS_SECRET_ACCESS_KEY),
    longest first."""
    import os

    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret(k) and len(v) >= MIN_SECRET_CHARS}
    return sorted(values, key=len, reverse=True)


# The password in a URL's user info: `postgresql://mlflow:<password>@db:5432/mlflow`, `http://user:<password>@host`.
URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\"]*:)[^/\s@'\"]+@")


def mask_url_passwords(text: str) -> str:
    """`text` with the password of every URL in it replaced by *** (`postgresql://mlflow:***@db/mlflow`)."""
    return URL_PASSWORD.sub(rf"\1{MASK}@", text) if "@" in text else text


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every occurrence of a secret environment value replaced by ***: a config that read a token from
    the environment under an innocent name (`auth: ${oc.env:HF_TOKEN}`), or an error message quoting it; and the
    password of every URL in it (a tracking URI `postgresql://user:password@host/db` is in the logged config)."""
    for secret in secret_env_values() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return mask_url_passwords(text)
