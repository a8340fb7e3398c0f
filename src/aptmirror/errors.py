"""The one exception tree of aptmirror.

AptMirrorError                  base of everything we raise on purpose
├── ConfigError                 bad mirror.list / .sources content (carries file and line)
├── FormatError                 an apt format (Release, Packages, Sources, deb822) is malformed
│   ├── UnsafePathError         a path from an index would escape the repository tree
│   └── ReleaseRejectedError    a signed Release fails a sanity check (expired, rollback, …)
├── SignatureError              gpgv rejected (or could not check) a Release signature
├── FetchError                  a download failed (carries the URL and the reason)
│   ├── HTTPStatusError         the server answered with an unexpected HTTP status
│   └── VerificationError       size or hash of a downloaded file does not match
├── StorageError                the local tree cannot be written/read as needed
│   └── LockError               another run holds var/apt-mirror.lock
└── WipeProtectionError         cleaning would delete more than the configured ratio

Not an error, beside the tree: ``Terminated`` (a ``KeyboardInterrupt``), how a run stopped
by SIGTERM ends, as one stopped by Ctrl-C ends with a ``KeyboardInterrupt``.

Adapters (the HTTP client, subprocess, sqlite) translate their errors into these with
``raise ... from exc``; retry policy looks only at these types.
"""

from __future__ import annotations


class AptMirrorError(Exception):
    """Base class of all errors raised on purpose by aptmirror."""


class ConfigError(AptMirrorError):
    """A configuration file is invalid; names the file and line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class FormatError(AptMirrorError):
    """An apt metadata file is malformed."""


class UnsafePathError(FormatError):
    """A path taken from an index would write outside the repository tree."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"unsafe path {path!r}: {reason}")


class ReleaseRejectedError(FormatError):
    """A Release is expired, older than the published one, or for another suite."""


class SignatureError(AptMirrorError):
    """A Release signature could not be verified."""


class FetchError(AptMirrorError):
    """Downloading one URL failed."""

    def __init__(self, url: str, reason: str, *, retryable: bool = True) -> None:
        self.url = url
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{url}: {reason}")


class HTTPStatusError(FetchError):
    """The server answered with an unexpected status code."""

    def __init__(
        self,
        url: str,
        status: int,
        reason: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did
        retryable = status in (408, 425, 429) or status >= 500
        super().__init__(url, reason or f"HTTP {status}", retryable=retryable)


class VerificationError(FetchError):
    """A downloaded file does not have the declared size or hash."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason, retryable=True)


class StorageError(AptMirrorError):
    """The local mirror tree could not be written or read."""


class LockError(StorageError):
    """Another apt-mirror run holds the lock."""


class WipeProtectionError(AptMirrorError):
    """Cleaning was refused because it would delete too much of a tree."""


class Terminated(KeyboardInterrupt):
    """The run was stopped by SIGTERM (see :mod:`aptmirror.sync.loop`)."""


def local_error_text(exc: OSError) -> str:
    """A local file error as ``PATH: reason`` (the reason alone when it names no path)."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
