"""Shared fixtures.

Sample-repository fixtures (from ``aptmirror.testing``): ``repo_key`` — one throwaway signing
key per session; ``sample_repo`` — the default signed repository, built once per session.
Treat ``sample_repo`` as read-only; tests that change a repository build their own with
``build_repo(tmp_path / "repo", repo_key)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aptmirror.testing import RepoInfo, TestKey, build_repo, make_key


@pytest.fixture(scope="session")
def repo_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKey]:
    key = make_key(tmp_path_factory.mktemp("key"))
    yield key
    key.close()


@pytest.fixture(scope="session")
def sample_repo(tmp_path_factory: pytest.TempPathFactory, repo_key: TestKey) -> RepoInfo:
    return build_repo(Path(tmp_path_factory.mktemp("sample")) / "repo", repo_key)
