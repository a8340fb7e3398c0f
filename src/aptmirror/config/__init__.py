"""Configuration: mirror.list grammar, deb822 .sources, $var expansion, option table.

Everything is pure except :mod:`aptmirror.config.loader`, which reads the files.
"""

from aptmirror.config.builder import ConfigText, build_config
from aptmirror.config.loader import DEFAULT_CONFIG_PATH, load_config

__all__ = ["DEFAULT_CONFIG_PATH", "ConfigText", "build_config", "load_config"]
