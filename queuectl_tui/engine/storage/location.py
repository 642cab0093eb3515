"""Where the database is, decided without importing any database code.

Kept apart from opening.py so the CLI can choose before Peewee is imported: Peewee
imports the PostgreSQL driver (and with it ssl) whenever it is installed,
about 15 ms that a command on a local SQLite file should not pay.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "queuectl" / "queuectl.db"


def resolve_target(db_arg: str | None) -> str:
    """The database the user means: flag, then environment, then the default."""
    return db_arg or os.environ.get("QUEUECTL_DB") or str(default_path())


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def skip_postgres_driver(target: str) -> None:
    """For a SQLite target, make Peewee's optional `import psycopg2` find nothing.

    Only effective before Peewee is first imported, and only for this process.
    """
    if not is_postgres_url(target) and "peewee" not in sys.modules:
        for name in ("psycopg2", "psycopg"):
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]


# Query parameters of a PostgreSQL URL that hold a secret (libpq's names; a
# `passfile` is a path, not a secret).
SECRET_PARAMS = ("password", "sslpassword")


def _secret_param(pair: str) -> bool:
    from urllib.parse import unquote_plus
    key, eq, _ = pair.partition("=")
    return bool(eq) and unquote_plus(key).strip().lower() in SECRET_PARAMS


def secrets_of(target: str) -> list[str]:
    """Every secret a PostgreSQL URL carries, as written and decoded: the
    password of `user:pass@` and of `password=` / `sslpassword=` in its query."""
    if not is_postgres_url(target):
        return []
    from urllib.parse import unquote, unquote_plus, urlparse
    parsed = urlparse(target)
    raw = [parsed.password] if parsed.password else []
    raw += [pair.partition("=")[2] for pair in parsed.query.split("&") if _secret_param(pair)]
    found = {form for value in raw for form in (value, unquote(value), unquote_plus(value))}
    return sorted((form for form in found if form), key=len, reverse=True)


def redact(target: str) -> str:
    """A database target fit to print, log or write into a unit: every secret
    a PostgreSQL URL can carry replaced by ***; a path as it is."""
    if not is_postgres_url(target):
        return target
    from urllib.parse import urlparse
    parsed = urlparse(target)
    netloc = parsed.netloc
    if parsed.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = "&".join(pair.partition("=")[0] + "=***" if _secret_param(pair) else pair
                     for pair in parsed.query.split("&")) if parsed.query else ""
    return parsed._replace(netloc=netloc, query=query).geturl()


def scrub(text: str, target: str) -> str:
    """`text` (a driver's error, say) with the secrets of `target` replaced by ***."""
    for secret in secrets_of(target):
        text = text.replace(secret, "***")
    return text
