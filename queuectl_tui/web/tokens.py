"""The secrets that open `queuectl web`: one made up at start, or a file of named ones.

A token file has one token a line, `NAME:TOKEN`, or a bare `TOKEN` (named
`web`); blank lines and `# comments` are skipped. The name is who opened a
page (`QUEUECTL_ACTOR=web:NAME` in its console's environment); the token is
what that person's URL carries once. The file must be readable by its owner
only (as ssh insists for a private key): a token the whole machine can read
guards nothing. No message here ever contains a token, only line numbers.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass

from queuectl_tui.errors import UsageError

DEFAULT_NAME = "web"
MIN_LENGTH = 16
MAX_LENGTH = 256
MAX_FILE_BYTES = 64 * 1024
MAX_TOKENS = 1000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# What a URL carries as it is (RFC 3986's unreserved characters): a token with
# `+`, `&` or `%` would reach the server changed.
SECRET = re.compile(r"[A-Za-z0-9._~-]+")


@dataclass(frozen=True)
class Tokens:
    """name -> token. `generated`: made up at start (its URL is printed once)."""

    by_name: dict[str, str]
    generated: bool = False

    def match(self, offered: str) -> str | None:
        """The name whose token `offered` is, or None. Every token is compared,
        each in constant time, so the time taken says nothing about how close
        an offer came or which name it was near."""
        found = None
        given = offered.encode("utf-8", "surrogateescape")
        for name, token in self.by_name.items():
            if hmac.compare_digest(given, token.encode()):
                found = name
        return found

    @property
    def names(self) -> list[str]:
        return list(self.by_name)

    @property
    def secrets(self) -> list[str]:
        """For scrubbing them out of anything logged."""
        return list(self.by_name.values())


def generate() -> Tokens:
    return Tokens({DEFAULT_NAME: secrets.token_urlsafe(32)}, generated=True)


def read_token_file(path: str) -> Tokens:
    """The named tokens in `path`, checked: owner-only, every line well formed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"the token file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise UsageError(f"the token file {path} may be read by others (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}): chmod 600 {path}")
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"the token file {path} is over {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the token file {path} is not UTF-8 text") from None
    return Tokens(parse(text, path))


def parse(text: str, where: str = "the token file") -> dict[str, str]:
    found: dict[str, str] = {}
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, token = line.partition(":")
        if not colon:
            name, token = DEFAULT_NAME, line
        at = f"{where}, line {number}"
        if not NAME.fullmatch(name):
            raise UsageError(f"{at}: a name is letters, digits and _ . @ - (at most 64), "
                             "before the colon")
        if not SECRET.fullmatch(token):
            raise UsageError(f"{at}: a token is letters, digits and _ . ~ - only")
        if not MIN_LENGTH <= len(token) <= MAX_LENGTH:
            raise UsageError(f"{at}: a token must be {MIN_LENGTH} to {MAX_LENGTH} "
                             f"characters (this one has {len(token)}); make one with: "
                             "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if name in found:
            raise UsageError(f"{at}: the name {name} is given twice")
        if token in seen:
            raise UsageError(f"{at}: this token is also another name's; give each its own")
        found[name] = token
        seen.add(token)
        if len(found) > MAX_TOKENS:
            raise UsageError(f"{where}: more than {MAX_TOKENS} tokens")
    if not found:
        raise UsageError(f"{where} has no token (a line `NAME:TOKEN`, or a bare token)")
    return found
