"""Credentials from apt's ``/etc/apt/auth.conf`` and ``auth.conf.d/*.conf`` (netrc format).

As apt_auth.conf(5): ``machine [protocol://]host[:port][/path] login NAME password SECRET``
(whitespace-separated tokens, which may span lines; a line starting with ``#`` is a
comment). An entry without a protocol matches only https (so a password is never sent in
clear text by accident); without a port it matches any port; a path must be a prefix of
the URL's path. The first matching entry wins, files
being read in order (``auth.conf``, then ``auth.conf.d/*.conf`` by name). Pure: the caller
reads the files.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aptmirror.frozen import frozen


@frozen
class Credential:
    scheme: str | None  # None: https only
    host: str
    port: int | None
    path: str  # "" or "/prefix"
    login: str
    password: str

    def matches(self, url: str) -> bool:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if self.scheme is None:
            if scheme not in ("https", "tor+https"):
                return False
        elif scheme != self.scheme:
            return False
        if (parts.hostname or "").lower() != self.host:
            return False
        if self.port is not None and (parts.port or _default_port(scheme)) != self.port:
            return False
        if self.path:
            path = parts.path or "/"
            prefix = self.path.rstrip("/")
            return path == prefix or path.startswith(prefix + "/")
        return True


def _default_port(scheme: str) -> int:
    return 443 if scheme.endswith("https") else 80


def _machine(value: str) -> tuple[str | None, str, int | None, str]:
    scheme: str | None = None
    if "://" in value:
        scheme, value = value.split("://", 1)
        scheme = scheme.lower()
    hostport, _, path = value.partition("/")
    host, _, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    if not host:
        host, port = hostport, ""
    return scheme, host.lower(), int(port) if port.isdigit() else None, f"/{path}" if path else ""


def parse_auth_conf(text: str) -> list[Credential]:
    """Every complete ``machine … login … password …`` entry of one file, in order."""
    tokens = [
        token
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for token in line.split()
    ]
    out: list[Credential] = []
    current: dict[str, str] = {}

    def flush() -> None:
        if "machine" in current and "login" in current and "password" in current:
            scheme, host, port, path = _machine(current["machine"])
            out.append(Credential(scheme, host, port, path, current["login"], current["password"]))
        current.clear()

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "machine":
            flush()
        if token in ("machine", "login", "password") and i + 1 < len(tokens):
            current[token] = tokens[i + 1]
            i += 2
            continue
        i += 1
    flush()
    return out


def find_credential(credentials: tuple[Credential, ...], url: str) -> Credential | None:
    for cred in credentials:
        if cred.matches(url):
            return cred
    return None
