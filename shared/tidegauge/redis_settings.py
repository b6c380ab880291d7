"""Redis connection settings from the config and the environment, the same for every command.

The collectors (Lambda and ``tidegauge collect``), the server and the operator commands all build their
connection here, so they agree on where each part comes from:
- URL, cluster mode, TLS CA, timeouts: the config's ``redis`` section (``--redis-url`` and
  ``$TIDEGAUGE_REDIS_URL`` already replace ``redis.url`` when the config is parsed);
- password: ``$TIDEGAUGE_REDIS_PASSWORD`` when set, else the AUTH secret's (the secret named by
  ``$TIDEGAUGE_REDIS_SECRET`` or ``redis.password_secret``, read by the caller), else the URL's;
- username: ``redis.username``, else the secret's, else the URL's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from tidegauge import environment
from tidegauge.config import RedisSettings
from tidegauge.errors import UsageError
from tidegauge.redis_connection import ConnectionSettings


class SecretFormatError(UsageError):
    """The AUTH secret's text is neither a bare token nor a JSON object with a ``password``."""

    hint = 'store the bare token, or JSON {"password": "...", "username": "..."} (username optional)'


def secret_id(redis: RedisSettings, environ: Mapping[str, str] | None = None) -> str | None:
    """The Secrets Manager secret holding the AUTH token: ``$TIDEGAUGE_REDIS_SECRET``, else the config's."""
    environ = os.environ if environ is None else environ
    return environ.get(environment.REDIS_SECRET) or redis.password_secret or None


def credentials_from_secret(text: str) -> tuple[str | None, str]:
    """(username or None, password) from a secret: a bare token, or JSON with ``password``/``username``."""
    if not text.lstrip().startswith("{"):
        return None, text
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError:
        return None, text  # a token that happens to start with "{"
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("password"), str):
        raise SecretFormatError("the Redis secret is a JSON object without a string 'password' field")
    username = parsed.get("username")
    return (username if isinstance(username, str) else None), parsed["password"]


def connection_settings(
    redis: RedisSettings,
    *,
    secret: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """How to reach Redis: the config's settings, AUTH from the environment or the secret's text."""
    environ = os.environ if environ is None else environ
    username, password = redis.username, None
    if secret is not None:
        secret_username, password = credentials_from_secret(secret)
        username = username or secret_username
    password = environ.get(environment.REDIS_PASSWORD) or password
    return ConnectionSettings(
        url=redis.url,
        cluster=redis.cluster,
        username=username,
        password=password,
        tls_ca_file=redis.tls_ca_file,
        socket_timeout_seconds=redis.socket_timeout_seconds,
    )
