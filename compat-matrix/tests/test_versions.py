"""Version specs: parsing, declared versions without building, the releases file lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
from kvetch_compat import versions
from kvetch_compat.versions import VersionError, VersionSpec, declared_version


def test_parse_forms(tmp_path: Path) -> None:
    assert VersionSpec.parse("etcd@3.5.1") == VersionSpec("etcd@3.5.1", "etcd", "3.5.1")
    assert VersionSpec.parse("kvetch@HEAD").ref == "HEAD"
    whl = tmp_path / "kvetch-0.2.0-py3-none-any.whl"
    spec = VersionSpec.parse(str(whl))
    assert spec.flavour == "kvetch" and declared_version(spec) == "0.2.0"
    for bad in ("etcd", "mysql@1.0.0", "etcd@3.5"):
        with pytest.raises(VersionError):
            VersionSpec.parse(bad)


def test_head_reads_the_working_tree_version() -> None:
    text = (versions.REPO_ROOT / "server" / "src" / "kvetch" / "version.py").read_text()
    assert f'"{declared_version(VersionSpec.parse("kvetch@HEAD"))}"' in text


def test_releases_file_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "REPO_ROOT", tmp_path)
    with pytest.raises(VersionError, match="no releases file"):
        versions.release_commit("0.1.0")
    (tmp_path / "releases.toml").write_text(
        'schema = 1\n\n[[release]]\nversion = "0.1.0"\ncommit = "' + "a" * 40 + '"\ndate = "2026-12-01"\n')
    assert versions.release_commit("0.1.0") == "a" * 40
    assert versions.release_commit("v0.1.0") == "a" * 40
    with pytest.raises(VersionError, match="not listed"):
        versions.release_commit("0.2.0")


def test_real_etcd_binaries_are_found_by_their_version() -> None:
    if not Path("/usr/bin/etcd").exists():
        pytest.skip("Debian etcd-server missing")
    r34 = versions.resolve(VersionSpec.parse("etcd@3.4.23"))
    r35 = versions.resolve(VersionSpec.parse("etcd@3.5.1"))
    assert r34.version == "3.4.23" and r35.version == "3.5.1"
    assert r35.server_argv[0].endswith("etcdbin/etcd")  # the real binary, not the Python shim on PATH
    assert r34.cluster_version == "3.4"
    with pytest.raises(VersionError, match="no etcd binary"):
        versions.resolve(VersionSpec.parse("etcd@3.9.9"))
