"""Read ``mirror.list`` and its fragments from disk and build the :class:`Config`.

The only module of ``aptmirror.config`` doing I/O: it reads files and runs
``dpkg --print-architecture``; all parsing is delegated to the pure modules.

Files read, in this order, sharing one ``set`` namespace:

1. the configuration file (default ``/etc/apt/mirror.list``);
2. every ``*.list`` (mirror.list grammar) and ``*.sources`` (deb822) regular file in
   ``mirror.list.d/`` next to it, sorted by file name (both kinds interleaved, like apt's
   ``sources.list.d``). A missing directory is not an error.

Files are decoded as UTF-8 with ``surrogateescape``: bytes that are not UTF-8 (a Latin-1
comment) survive unchanged, as they did for Perl.
"""

from __future__ import annotations

import os
import subprocess

from aptmirror.config.builder import ConfigText, build_config
from aptmirror.errors import ConfigError
from aptmirror.model import Config

DEFAULT_CONFIG_PATH = "/etc/apt/mirror.list"
FRAGMENT_DIR = "mirror.list.d"
FALLBACK_ARCH = "i386"  # what Perl uses when dpkg fails


def detect_default_arch() -> str:
    """``dpkg --print-architecture``, or ``i386`` when dpkg is missing or fails (as Perl)."""
    try:
        result = subprocess.run(
            ["dpkg", "--print-architecture"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return FALLBACK_ARCH
    return result.stdout.strip() or FALLBACK_ARCH


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as stream:
            return stream.read()
    except OSError as exc:
        raise ConfigError(f"can't open config file: {exc.strerror}", path) from exc


def fragment_paths(config_path: str) -> list[str]:
    """``mirror.list.d/*.list`` and ``*.sources`` next to ``config_path``, sorted by name."""
    directory = os.path.join(os.path.dirname(config_path), FRAGMENT_DIR)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"can't read directory: {exc.strerror}", directory) from exc
    paths = [
        os.path.join(directory, name)
        for name in sorted(names)
        if name.endswith((".list", ".sources"))
    ]
    return [path for path in paths if os.path.isfile(path)]


def load_config(path: str | None = None, *, default_arch: str | None = None) -> Config:
    """Load the configuration; ``default_arch`` overrides running dpkg (tests, callers).

    Raises ConfigError("invalid config file specified") when ``path`` is not a file, and
    ConfigError naming file and line for any invalid content.
    """
    config_path = path if path is not None else DEFAULT_CONFIG_PATH
    if not os.path.isfile(config_path):
        raise ConfigError("invalid config file specified", config_path)
    texts = [ConfigText(config_path, _read(config_path), "list")]
    for fragment in fragment_paths(config_path):
        text = _read(fragment)
        if fragment.endswith(".sources"):
            texts.append(ConfigText(fragment, text, "sources"))
        else:
            texts.append(ConfigText(fragment, text, "list"))
    arch = default_arch if default_arch is not None else detect_default_arch()
    return build_config(texts, arch)
