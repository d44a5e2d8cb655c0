"""Credentials never land in a run folder, a report or a log line.

Three kinds of secret reach nnlab: a tracking URI with a user and password or token
(``https://user:token@host``), MLflow's credentials in the environment
(``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_PASSWORD``, ...), and a ``--set`` value under a
key named like a secret (``...password=...``, ``...token=...``). Each is registered here
(:func:`register`, or found by :func:`secrets_in_environment`) and :func:`redact` replaces it
in any text: the run folder's writer (:meth:`nnlab.store.folder.RunFolder.write_text`), the
command line env.json records and the messages nnlab prints all pass through it.
"""

from __future__ import annotations

import os
import re
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

#: What a secret is replaced with.
MASK = "***"
#: A key is a secret's when a part of its dotted name matches (``tracking.password``, ``api_key``).
SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|credential|auth)", re.IGNORECASE)
#: The environment variables that hold MLflow's credentials.
SECRET_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_CLIENT_CERT_PATH",
                    "DATABRICKS_TOKEN", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_ACCESS_KEY")

_registered: set[str] = set()


def register(*values: str | None) -> None:
    """Remember secret values (at least 3 characters; shorter ones would mask ordinary text)."""
    for value in values:
        if value and len(value) >= 3:
            _registered.add(value)


def secrets_in_environment() -> list[str]:
    """The values of :data:`SECRET_VARIABLES` that are set."""
    return [os.environ[name] for name in SECRET_VARIABLES if os.environ.get(name)]


def is_secret_key(key: str) -> bool:
    """Whether a (dotted) key names a secret."""
    return any(SECRET_KEY.search(part) for part in str(key).split("."))


def uri_secrets(uri: str) -> list[str]:
    """The secret of a URI's ``user:password@`` part: the password, or the user when it stands alone
    (``https://TOKEN@host``: a token often stands as the user)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return []
    secret = parts.password or parts.username
    return [secret] if secret else []


def redact_uri(uri: str) -> str:
    """``https://user:token@host/path`` -> ``https://***@host/path``; other URIs as they are."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not (parts.username or parts.password):
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"{MASK}@{host}", parts.path, parts.query, parts.fragment))


def register_overrides(overrides: Iterable[str]) -> None:
    """Register the values of ``--set key=value`` overrides whose key names a secret, and the
    credentials of any URI among the values."""
    for override in overrides:
        key, sep, value = str(override).partition("=")
        if not sep:
            continue
        if is_secret_key(key):
            register(value.strip())
        register(*uri_secrets(value.strip()))


def redact(text: str) -> str:
    """``text`` with every registered secret, and every secret of the environment, replaced by ``***``."""
    for secret in sorted({*_registered, *secrets_in_environment()}, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
