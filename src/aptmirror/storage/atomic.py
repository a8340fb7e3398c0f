"""Atomic file writes: a reader sees the old content or the new one, never a mixture.

Content goes to a hidden temporary file in the same directory (same file system, so
``os.replace`` is an atomic rename), which then replaces the target. Also names the hidden
partial-download file that the fetcher uses next to its target.

Imports only ``aptmirror.errors``; OS errors are translated to ``StorageError``.

Durability: by default nothing is fsynced. A crash (power loss, not a killed process) can
then leave an empty or old file, never a half-written one under the final name being
visible to a running reader. Pass ``fsync=True`` where surviving power loss matters; it
costs one or two disk flushes per file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from aptmirror.errors import StorageError

PARTIAL_SUFFIX = ".aptmirror-partial"
"""Suffix of in-progress (resumable) downloads; cleaning never deletes such files."""

_DEFAULT_MODE = 0o666  # minus the umask, like any file created by open()
_MAX_NAME_TRIES = 100


def temp_name_for(path: str) -> str:
    """Hidden partial-download path next to ``path``: ``dir/.<name>.aptmirror-partial``
    (a plain string: the pool stage asks for one per file)."""
    directory, slash, name = path.rpartition("/")
    return f"{directory}{slash}.{name}{PARTIAL_SUFFIX}"


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """:func:`temp_name_for` as a Path."""
    return Path(temp_name_for(os.fspath(Path(path))))


def ensure_parent(path: str | os.PathLike[str]) -> None:
    """Create the parent directories of ``path`` if they are missing."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create directory {parent}: {exc.strerror or exc}") from exc


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """A file written under a temporary name and renamed over ``path`` on ``commit()``.

    Use as a context manager (commit on success, abort on exception) or call ``open()``,
    ``write()``/``write_text()`` and then ``commit()`` or ``abort()``. Writes are buffered;
    content is streamed to disk, never held in memory.

    ``mode`` None gives a normal file (0o666 minus the umask, e.g. 0o644); an explicit mode
    is applied exactly (e.g. 0o755 for a script). The parent directory must exist (see
    ``ensure_parent``). The constructor does no I/O.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, mode: int | None = None, fsync: bool = False
    ) -> None:
        self.path = Path(path)
        self.mode = mode
        self.fsync = fsync
        self.temp_path: Path | None = None
        self._file: BinaryIO | None = None

    def open(self) -> AtomicFile:
        """Create the temporary file; returns self."""
        if self._file is not None:
            raise StorageError(f"{self.path}: atomic file already open")
        prefix = f".{self.path.name}.tmp-"
        for _ in range(_MAX_NAME_TRIES):
            candidate = self.path.with_name(prefix + os.urandom(4).hex())
            try:
                fd = os.open(
                    candidate,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                    _DEFAULT_MODE,
                )
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(
                    f"cannot create temporary file for {self.path}: {exc.strerror or exc}"
                ) from exc
            self.temp_path = candidate
            self._file = os.fdopen(fd, "wb", buffering=1 << 16)
            return self
        raise StorageError(f"cannot find a free temporary name for {self.path}")

    def write(self, data: bytes) -> None:
        """Append bytes."""
        if self._file is None:
            raise StorageError(f"{self.path}: atomic file is not open")
        try:
            self._file.write(data)
        except OSError as exc:
            raise StorageError(f"cannot write {self.temp_path}: {exc.strerror or exc}") from exc

    def write_text(self, text: str) -> None:
        """Append UTF-8 text; undecodable file names (surrogate escapes) round-trip."""
        self.write(text.encode("utf-8", "surrogateescape"))

    def commit(self) -> None:
        """Flush, optionally fsync, set the mode and rename over the target."""
        if self._file is None or self.temp_path is None:
            raise StorageError(f"{self.path}: atomic file is not open")
        file, temp = self._file, self.temp_path
        try:
            file.flush()
            if self.mode is not None:
                os.fchmod(file.fileno(), self.mode)
            if self.fsync:
                os.fsync(file.fileno())
            file.close()
            self._file = None
            os.replace(temp, self.path)
            self.temp_path = None
            if self.fsync:
                _fsync_directory(self.path.parent)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def abort(self) -> None:
        """Close and delete the temporary file; the target is untouched. Idempotent."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self.temp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.temp_path.unlink()
            self.temp_path = None

    def __enter__(self) -> AtomicFile:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, fsync: bool = False, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically (parent directory must exist)."""
    with AtomicFile(path, mode=mode, fsync=fsync) as out:
        out.write(data)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, fsync: bool = False, mode: int | None = None
) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically (parent directory must exist)."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"), fsync=fsync, mode=mode)
