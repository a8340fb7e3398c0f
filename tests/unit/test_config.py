"""aptmirror.config: building a Config from mirror.list (+ mirror.list.d) and loading it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aptmirror.config import ConfigText, build_config, load_config
from aptmirror.config import loader as loader_module
from aptmirror.errors import ConfigError
from aptmirror.model import Config, Location, Settings, SourceLine, SourceType

PERL_SAMPLE = """\
############# config ##################
#
# set base_path    /var/spool/apt-mirror
#
# set mirror_path  $base_path/mirror
# set skel_path    $base_path/skel
# set var_path     $base_path/var
# set cleanscript $var_path/clean.sh
# set defaultarch  <running host architecture>
# set postmirror_script $var_path/postmirror.sh
# set run_postmirror 0
set nthreads     20
set _tilde 0
#
############# end config ##############

deb http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware
deb http://deb.debian.org/debian bookworm-updates main contrib non-free non-free-firmware

deb-src http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware

clean http://deb.debian.org/debian
"""


def build(text: str, arch: str = "amd64", path: str = "m.list") -> Config:
    return build_config([ConfigText(path, text)], arch)


def messages(config: Config) -> list[str]:
    return [str(w) for w in config.warnings]


class TestPerlSample:
    def test_sample(self) -> None:
        config = build(PERL_SAMPLE)
        assert config.settings == Settings(defaultarch="amd64", limit_rate=100 * 1024**2)
        assert [(s.type, s.dist, s.arches) for s in config.sources] == [
            (SourceType.BINARY, "bookworm", ("amd64",)),
            (SourceType.BINARY, "bookworm-updates", ("amd64",)),
            (SourceType.SOURCE, "bookworm", ()),
        ]
        assert config.sources[0].components == ("main", "contrib", "non-free", "non-free-firmware")
        assert config.sources[0].location == Location("m.list", 17)
        assert config.clean == ("deb.debian.org/debian",)
        assert config.skip_clean == ()
        assert config.variables == (("nthreads", "20"), ("_tilde", "0"))
        assert config.warnings == ()
        assert config.files == ("m.list",)
        assert config.directives == ()


class TestDebLines:
    def test_arch_forms(self) -> None:
        config = build(
            "deb http://h/d sid main\n"
            "deb-armhf http://h/d sid main\n"
            "deb [arch=amd64,i386 signed-by=/k.gpg] http://h/d sid main\n"
            "deb-armel [arch=arm64] http://h/d sid main\n"
            "deb-src [arch=amd64 trusted=yes] http://h/d sid main\n"
        )
        assert [s.arches for s in config.sources] == [
            ("amd64",),
            ("armhf",),
            ("amd64", "i386"),  # all of them (Perl bug #90 took only the first)
            ("arm64",),
            (),
        ]
        assert config.sources[2].options == (("signed-by", "/k.gpg"),)
        assert config.sources[4].options == (("trusted", "yes"),)

    def test_uri_kept_as_written(self) -> None:
        (source,) = build("deb http://u:p@h:8080/debian/ sid main\n").sources
        assert source.uri == "http://u:p@h:8080/debian/"

    def test_no_expansion_on_deb_lines(self) -> None:  # Perl does not expand them
        (source,) = build("set d sid\ndeb http://h/$d $d main\n").sources
        assert (source.uri, source.dist) == ("http://h/$d", "$d")

    def test_comment_after_deb_line(self) -> None:
        config = build("deb http://x/debian stable main # comment\n")
        (source,) = config.sources
        assert source.components == ("main", "#", "comment")  # as apt-mirror reads it
        assert messages(config) == [
            "m.list:1: '#' starts no comment on a deb line (as in apt-mirror): '#', 'comment'"
            " are read as components; put comments on a line of their own"
        ]

    def test_comment_instead_of_the_distribution(self) -> None:
        config = build("deb-src http://x/debian #stable main\n")
        assert config.sources[0].dist == "#stable"
        assert messages(config) == [
            "m.list:1: '#' starts no comment on a deb line (as in apt-mirror): '#stable',"
            " 'main' are read as distribution and components; put comments on a line of"
            " their own"
        ]

    def test_hash_inside_a_word_is_no_comment(self) -> None:
        assert build("deb http://x/debian stable ma#in\n").warnings == ()

    def test_flat(self) -> None:
        (source,) = build("deb http://h/repo ./\n").sources
        assert source.is_flat

    @pytest.mark.parametrize(
        ("uri", "pattern"),
        [
            ("ftp://h/debian", "unsupported URI scheme 'ftp'"),
            ("file:/srv/repo", "invalid URI"),
            ("deb.debian.org/debian", "invalid URI"),
            ("http:///debian", "no host"),
            ("http://h/a/../b", r"\.\."),
        ],
    )
    def test_bad_uri(self, uri: str, pattern: str) -> None:
        with pytest.raises(ConfigError, match=pattern) as info:
            build(f"# x\ndeb {uri} sid main\n")
        assert (info.value.path, info.value.line) == ("m.list", 2)

    def test_invalid_line_names_file_and_line(self) -> None:
        with pytest.raises(ConfigError) as info:
            build("set a b\n\nbogus line here\n", path="/etc/apt/mirror.list")
        assert str(info.value).startswith("/etc/apt/mirror.list:3: invalid line in config file")


class TestBindingTime:
    def test_defaultarch_value_at_each_deb_line(self) -> None:
        config = build(
            "deb http://h/d a main\n"
            "set defaultarch i386\n"
            "deb http://h/d b main\n"
            "set defaultarch arm64\n"
        )
        assert [s.arches for s in config.sources] == [("amd64",), ("i386",)]
        assert config.settings.defaultarch == "arm64"

    def test_defaultarch_expanded_with_variables_known_then(self) -> None:
        config = build(
            "set myarch ppc64el\nset defaultarch $myarch\ndeb http://h/d a main\nset myarch s390x\n"
        )
        assert config.sources[0].arches == ("ppc64el",)
        assert config.settings.defaultarch == "s390x"  # lazily, at the end

    def test_defaultarch_undefined_at_deb_line(self) -> None:
        with pytest.raises(ConfigError, match="'defaultarch' is empty here") as info:
            build("set defaultarch $myarch\ndeb http://h/d a main\nset myarch amd64\n")
        assert info.value.line == 2

    def test_defaultarch_empty_at_end(self) -> None:
        with pytest.raises(ConfigError, match="Please explicitly specify 'defaultarch'"):
            build("deb-amd64 http://h/d a main\nset defaultarch ''\n")

    def test_tilde_value_at_each_clean_line(self) -> None:
        config = build(
            "clean http://h/~a\nset _tilde 1\nclean http://h/~b\nskip-clean http://h/~c/\n"
            "set _tilde 0\n"
        )
        assert config.clean == ("h/~a", "h/%7Eb")
        assert config.skip_clean == ("h/%7Ec",)
        assert config.settings.tilde is False


class TestVariables:
    def test_lazy_last_set_wins(self) -> None:
        config = build("set mirror_path $base_path/m\nset base_path /a\nset base_path /b\n")
        assert config.settings.mirror_path == "/b/m"
        assert config.settings.var_path == "/b/var"
        assert dict(config.variables) == {"mirror_path": "/b/m", "base_path": "/b"}

    def test_recursion_error(self) -> None:
        with pytest.raises(ConfigError, match="too many substitution") as info:
            build("set base_path /x\nset var_path $var_path/y\n")
        assert (info.value.path, info.value.line) == ("m.list", 2)

    def test_recursion_in_unknown_key_is_only_a_warning(self) -> None:
        config = build("set loop $loop\n")
        assert any("too many substitution" in m for m in messages(config))

    def test_undefined_variable_warning_with_line(self) -> None:
        config = build("# c\nset base_path $bsae/srv\n")
        assert config.settings.base_path == "/srv"
        assert messages(config) == [
            "m.list:2: undefined variable '$bsae' in value of 'base_path' (expands to empty)"
        ]

    def test_unknown_key_warning_with_line(self) -> None:
        config = build("set nthread 5\nset http_user_agent x\n")
        assert messages(config) == ["m.list:1: unknown option 'nthread'"]
        assert dict(config.variables)["nthread"] == "5"  # still accepted
        assert config.settings.nthreads == 20

    def test_nthreads_bad_value_names_line(self) -> None:
        with pytest.raises(ConfigError, match="invalid value for 'nthreads'") as info:
            build("\n\nset nthreads many\n")
        assert str(info.value).startswith("m.list:3: ")

    def test_limit_rate(self) -> None:
        assert build("set limit_rate 1.5M\n").settings.limit_rate == int(1.5 * 1024**2)

    def test_unanchored_set_warns(self) -> None:
        config = build("reset nthreads 4\n")
        assert config.settings.nthreads == 4
        assert messages(config) == [
            "m.list:1: text before 'set' is ignored (apt-mirror accepts it)"
        ]


class TestClean:
    def test_credentials_and_port(self) -> None:
        config = build(
            "clean http://user:secret@example.com:8080/debian/\n"
            "skip-clean https://u:p@h/debian/pool/main/x/\n"
        )
        assert config.clean == ("example.com:8080/debian",)  # Perl bug #124 kept user:pass@
        assert config.skip_clean == ("h/debian/pool/main/x",)

    def test_at_and_plus_in_path(self) -> None:
        config = build("skip-clean http://h/u/dep11/icons-64x64@2.tar.gz\nclean http://h/c++\n")
        assert config.skip_clean == ("h/u/dep11/icons-64x64@2.tar.gz",)
        assert config.clean == ("h/c++",)

    def test_duplicates_merged(self) -> None:
        assert build("clean http://h/d\nclean http://h/d/\n").clean == ("h/d",)

    def test_bad_clean_path(self) -> None:
        with pytest.raises(ConfigError, match=r"\.\.") as info:
            build("\nclean http://h/../etc\n")
        assert info.value.line == 2


def test_directives_kept() -> None:
    config = build("deb http://h/d sid main\nmirror_path http://h/d debian\n")
    assert config.directives == (("mirror_path", ("http://h/d", "debian"), Location("m.list", 2)),)


class TestSeveralFiles:
    def test_shared_namespace_and_order(self) -> None:
        config = build_config(
            [
                ConfigText("main", "set base_path /a\ndeb http://h/d a main\n"),
                ConfigText("d/1.list", "set defaultarch arm64\ndeb http://h/d b main\n"),
                ConfigText(
                    "d/2.sources",
                    "Types: deb\nURIs: http://h/x\nSuites: s\nComponents: c\nClean: yes\n"
                    "Skip-Clean: pool/keep\n",
                    "sources",
                ),
                ConfigText("d/3.list", "set base_path /b\n"),
            ],
            "amd64",
        )
        assert config.files == ("main", "d/1.list", "d/2.sources", "d/3.list")
        assert [(s.dist, s.arches, s.location.path) for s in config.sources] == [
            ("a", ("amd64",), "main"),
            ("b", ("arm64",), "d/1.list"),
            ("s", ("arm64",), "d/2.sources"),
        ]
        assert config.clean == ("h/x",)
        assert config.skip_clean == ("h/x/pool/keep",)
        assert config.settings.mirror_path == "/b/mirror"

    def test_sources_uri_checked(self) -> None:
        text = "Types: deb\nURIs: http://h/x ftp://h/y\nSuites: s\nComponents: c\n"
        with pytest.raises(ConfigError, match="unsupported URI scheme") as info:
            build_config([ConfigText("x.sources", text, "sources")], "amd64")
        assert (info.value.path, info.value.line) == ("x.sources", 1)

    def test_deb_src_stanza_does_not_bind_defaultarch(self) -> None:
        text = "Types: deb-src\nURIs: http://h/x\nSuites: s\nComponents: c\n"
        config = build_config(
            [ConfigText("x.sources", text, "sources"), ConfigText("m", "set defaultarch i386\n")],
            "",
        )
        assert config.sources[0].arches == ()

    def test_binary_stanza_with_empty_defaultarch(self) -> None:
        text = "\nTypes: deb\nURIs: http://h/x\nSuites: s\nComponents: c\n"
        with pytest.raises(ConfigError, match="'defaultarch' is empty") as info:
            build_config([ConfigText("x.sources", text, "sources")], "")
        assert (info.value.path, info.value.line) == ("x.sources", 2)


class TestLoader:
    def test_missing_file(self, tmp_path: Path) -> None:
        missing = str(tmp_path / "nope.list")
        with pytest.raises(ConfigError, match="invalid config file specified") as info:
            load_config(missing, default_arch="amd64")
        assert info.value.path == missing

    def test_directory_is_not_a_config(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="invalid config file specified"):
            load_config(str(tmp_path), default_arch="amd64")

    def test_default_path(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        target = tmp_path / "mirror.list"
        target.write_text("deb http://h/d sid main\n")
        monkeypatch.setattr(loader_module, "DEFAULT_CONFIG_PATH", str(target))
        assert load_config(default_arch="amd64").files == (str(target),)

    def test_fragments_sorted_and_merged(self, tmp_path: Path) -> None:
        main = tmp_path / "mirror.list"
        main.write_text("set nthreads 3\ndeb http://h/main sid main\n")
        fragments = tmp_path / "mirror.list.d"
        fragments.mkdir()
        (fragments / "b.sources").write_text(
            "Types: deb\nURIs: http://h/b\nSuites: sid\nComponents: main\n"
        )
        (fragments / "a.list").write_text("deb-i386 http://h/a sid main\n")
        (fragments / "c.list").write_text("set nthreads 7\n")
        (fragments / "ignored.conf").write_text("garbage\n")
        (fragments / "dir.list").mkdir()
        config = load_config(str(main), default_arch="amd64")
        assert config.files == (
            str(main),
            str(fragments / "a.list"),
            str(fragments / "b.sources"),
            str(fragments / "c.list"),
        )
        assert [s.uri for s in config.sources] == ["http://h/main", "http://h/a", "http://h/b"]
        assert config.settings.nthreads == 7

    def test_fragment_error_names_fragment(self, tmp_path: Path) -> None:
        main = tmp_path / "mirror.list"
        main.write_text("deb http://h/d sid main\n")
        (tmp_path / "mirror.list.d").mkdir()
        bad = tmp_path / "mirror.list.d" / "x.list"
        bad.write_text("\n\nnonsense\n")
        with pytest.raises(ConfigError) as info:
            load_config(str(main), default_arch="amd64")
        assert str(info.value).startswith(f"{bad}:3: invalid line in config file")

    def test_non_utf8_comment(self, tmp_path: Path) -> None:
        main = tmp_path / "mirror.list"
        main.write_bytes(b"# caf\xe9\ndeb http://h/d sid main\n")
        assert len(load_config(str(main), default_arch="amd64").sources) == 1

    def test_dpkg_arch_used_by_default(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        main = tmp_path / "mirror.list"
        main.write_text("deb http://h/d sid main\n")
        monkeypatch.setattr(loader_module, "detect_default_arch", lambda: "mips64el")
        assert load_config(str(main)).sources[0].arches == ("mips64el",)


class TestDetectDefaultArch:
    def test_real_dpkg_or_fallback(self) -> None:
        assert loader_module.detect_default_arch()

    def test_dpkg_output(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(["dpkg"], 0, stdout="arm64\n", stderr="")

        monkeypatch.setattr(subprocess, "run", fake_run)
        assert loader_module.detect_default_arch() == "arm64"

    @pytest.mark.parametrize(
        "error", [FileNotFoundError("dpkg"), subprocess.CalledProcessError(2, "dpkg")]
    )
    def test_fallback_i386(self, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
        def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
            raise error

        monkeypatch.setattr(subprocess, "run", fake_run)
        assert loader_module.detect_default_arch() == "i386"

    def test_empty_output_falls_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(["dpkg"], 0, stdout="\n", stderr="")

        monkeypatch.setattr(subprocess, "run", fake_run)
        assert loader_module.detect_default_arch() == "i386"


def test_source_line_type() -> None:
    (source,) = build("deb http://h/d sid main\n").sources
    assert isinstance(source, SourceLine)


def test_double_slashes_in_a_uri_are_collapsed_as_perl_did() -> None:
    """The Perl tool fetched ``http://h//debian/./x`` as ``http://h/debian/x``
    (remove_double_slashes); a server answers 404 for ``//debian``."""
    config = build_config(
        [
            ConfigText("m.list", "deb http://u:p@h:81//debian/./ sid main\n"),
            ConfigText(
                "d.sources",
                "Types: deb\nURIs: https://h//x//y\nSuites: sid\nComponents: main\n",
                "sources",
            ),
        ],
        "amd64",
    )
    assert [s.uri for s in config.sources] == ["http://u:p@h:81/debian/", "https://h/x/y"]
