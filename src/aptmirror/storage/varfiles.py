"""The file lists in ``var_path``: ``ALL``, ``NEW``, ``MD5``, ``SHA1``, ``SHA256`` (B.6).

Formats are the Perl tool's, so existing habits keep working
(``cd mirror && sha256sum -c ../var/SHA256``):

* ``ALL``: one pool path per line, relative to ``mirror_path``; duplicates allowed.
* ``NEW``: full URLs (scheme and credentials included) of files downloaded this run.
* ``MD5``/``SHA1``/``SHA256``: ``<hex digest>  <path>`` (two spaces, ``*sum -c`` format),
  a line only when that hash is known.

Lines are streamed to hidden temporary files (in batches of ``BATCH_LINES``: four lists get
a line per pool file) and all five files replace the previous run's at ``commit()``;
``abort()`` leaves the old lists in place.

Imports only ``aptmirror.errors`` and ``storage.atomic``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from aptmirror.errors import StorageError
from aptmirror.storage.atomic import AtomicFile

VAR_FILE_NAMES: tuple[str, ...] = ("ALL", "NEW", "MD5", "SHA1", "SHA256")
BATCH_LINES = 2048  # lines of one list held before they are written
_POOL_LISTS = ("ALL", "MD5", "SHA1", "SHA256")


def _check_line(value: str, what: str) -> None:
    # A newline would split one entry into two lines and break `sha256sum -c`.
    if "\n" in value or "\r" in value:
        raise StorageError(f"{what} contains a line break: {value!r}")


class VarFiles:
    """Writer of the five var/ file lists of one run.

    Usage::

        with VarFiles(var_path) as lists:
            lists.add_pool_file("deb.example.org/debian/pool/main/h/hello/hello.deb",
                                md5, sha1, sha256)
            lists.add_new("http://deb.example.org/debian/pool/main/h/hello/hello.deb")

    The context manager commits on success and aborts on exception. ``add_*`` opens the
    temporary files on first use; committing without any entry writes five empty files,
    as the Perl tool truncates them every run. The constructor does no I/O.
    """

    def __init__(self, var_path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.var_path = Path(var_path)
        self.fsync = fsync
        self._files: dict[str, AtomicFile] | None = None
        self._lines: dict[str, list[str]] = {name: [] for name in VAR_FILE_NAMES}
        self.pool_count = 0
        self.new_count = 0

    def open(self) -> VarFiles:
        """Create the five temporary files (idempotent); returns self."""
        if self._files is not None:
            return self
        files: dict[str, AtomicFile] = {}
        try:
            for name in VAR_FILE_NAMES:
                files[name] = AtomicFile(self.var_path / name, fsync=self.fsync).open()
        except StorageError:
            for opened in files.values():
                opened.abort()
            raise
        self._files = files
        return self

    def _get(self) -> dict[str, AtomicFile]:
        if self._files is None:
            return self.open()._get()
        return self._files

    def add_pool_file(
        self, relpath: str, md5: str | None, sha1: str | None, sha256: str | None
    ) -> None:
        """Record a pool file referenced by an index (path relative to mirror_path)."""
        # Called once per pool file of every index: the four lists are appended to directly,
        # and the values checked for line breaks in one go (each one only if that fails).
        joined = f"{relpath}{md5 or ''}{sha1 or ''}{sha256 or ''}"
        if "\n" in joined or "\r" in joined:
            _check_line(relpath, "pool path")
            for name, digest in (("MD5", md5), ("SHA1", sha1), ("SHA256", sha256)):
                _check_line(digest or "", f"{name} of {relpath}")
        lines = self._lines
        every = lines["ALL"]
        every.append(relpath)
        if md5:
            lines["MD5"].append(f"{md5}  {relpath}")
        if sha1:
            lines["SHA1"].append(f"{sha1}  {relpath}")
        if sha256:
            lines["SHA256"].append(f"{sha256}  {relpath}")
        self.pool_count += 1
        if len(every) >= BATCH_LINES:
            for name in _POOL_LISTS:
                self._write(name)

    def add_new(self, url: str) -> None:
        """Record the full URL of a file that needed downloading this run."""
        _check_line(url, "URL")
        self._add("NEW", url)
        self.new_count += 1

    def _add(self, name: str, line: str) -> None:
        lines = self._lines[name]
        lines.append(line)
        if len(lines) >= BATCH_LINES:
            self._write(name)

    def _write(self, name: str) -> None:
        lines = self._lines[name]
        if lines:
            self._get()[name].write_text("\n".join(lines) + "\n")
            lines.clear()

    def commit(self) -> None:
        """Replace the five lists with this run's (each one atomically)."""
        for name in VAR_FILE_NAMES:
            self._write(name)
        files = self._get()
        self._files = None
        pending = list(files.values())
        try:
            while pending:
                pending[0].commit()
                pending.pop(0)
        finally:
            for leftover in pending:
                leftover.abort()

    close = commit

    def abort(self) -> None:
        """Delete the temporary files; the previous lists stay. Idempotent."""
        files, self._files = self._files, None
        for lines in self._lines.values():
            lines.clear()
        for file in (files or {}).values():
            file.abort()

    def __enter__(self) -> VarFiles:
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
