"""config.observe: the observability set keys, typed; and that the loader knows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from aptmirror.config.loader import load_config
from aptmirror.config.observe import ObserveSettings, observe_settings
from aptmirror.errors import ConfigError


def _load(tmp_path: Path, *sets: str) -> tuple[ObserveSettings, list[str]]:
    path = tmp_path / "mirror.list"
    lines = [f"set base_path {tmp_path}", "set defaultarch amd64", *sets]
    path.write_text("\n".join([*lines, "deb http://h/debian stable main"]) + "\n")
    config = load_config(str(path))
    return observe_settings(config), [str(w) for w in config.warnings]


def test_defaults(tmp_path: Path) -> None:
    opts, warnings = _load(tmp_path)
    assert opts == ObserveSettings()
    assert warnings == []


def test_values_are_typed_and_keys_known(tmp_path: Path) -> None:
    opts, warnings = _load(
        tmp_path,
        "set log_format json",
        "set log_file $var_path/apt-mirror.log",
        "set log_max_bytes 1.5m",
        "set log_backup_count 3",
        "set log_journal on",
        "set metrics_textfile /tmp/x.prom",
        "set progress_interval 5",
        "set health_warning_age 12",
        "set health_critical_age 24",
        "set progress plain",
    )
    assert warnings == []
    assert opts.log_format == "json" and opts.log_file == f"{tmp_path}/var/apt-mirror.log"
    assert opts.log_max_bytes == int(1.5 * 1024 * 1024) and opts.log_backup_count == 3
    assert opts.log_journal and opts.metrics_textfile == "/tmp/x.prom"
    assert (opts.progress_interval, opts.health_warning_age, opts.health_critical_age) == (
        5.0, 12.0, 24.0,
    )  # fmt: skip
    assert opts.progress == "plain"


@pytest.mark.parametrize(
    "line",
    [
        "set log_format xml",
        "set log_max_bytes lots",
        "set log_backup_count -1",
        "set log_journal maybe",
        "set progress_interval -5",
        "set progress fancy",
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match=line.split()[1]):
        _load(tmp_path, line)
