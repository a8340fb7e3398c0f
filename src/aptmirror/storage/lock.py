"""The run lock: one apt-mirror run per ``var_path`` at a time.

Same file and semantics as the Perl tool (B.6): an exclusive, non-blocking ``flock`` on
``var/apt-mirror.lock``, deleted at the normal end of a run. The holder's PID is written
into the file for the user's benefit only; the ``flock`` decides, so a file left behind by
a killed run never blocks the next one.

Imports only ``aptmirror.errors``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from aptmirror.errors import LockError, StorageError

LOCK_NAME = "apt-mirror.lock"
_MAX_TRIES = 10


class RunLock:
    """Exclusive lock on ``<var_path>/apt-mirror.lock``.

    ``acquire()`` raises ``LockError`` when another process holds it; ``release()`` deletes
    the file and unlocks. The descriptor is close-on-exec, so child processes (the
    postmirror script) do not keep the lock alive after we exit. The constructor does no I/O.
    """

    def __init__(self, var_path: str | os.PathLike[str]) -> None:
        self.path = Path(var_path) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise StorageError(f"{self.path}: lock already acquired by this process")
        # A releasing holder unlinks the file while locked; if we opened that old file we
        # would lock an orphaned inode. Re-check that the locked inode is still the file at
        # the path, and retry otherwise.
        for _ in range(_MAX_TRIES):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockError(
                    f"apt-mirror is already running, exiting (lock held: {self.path})"
                ) from None
            except OSError as exc:
                os.close(fd)
                raise StorageError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
            if self._is_current(fd):
                self._fd = fd
                self._write_pid(fd)
                return
            os.close(fd)
        raise LockError(f"cannot take the lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        """Delete the lock file and unlock. Does nothing if not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        finally:
            os.close(fd)  # closing drops the flock

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open lock file {self.path}: {exc.strerror or exc}") from exc

    def _is_current(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    @staticmethod
    def _write_pid(fd: int) -> None:
        # Informational only; failing to write it must not fail the run.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
