"""The releases file: documented reader API, writer, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from kvetch_release import releases

ROOT = Path(__file__).resolve().parents[2]


def _rel(version: str, **kw) -> releases.Release:
    return releases.Release(version=version, commit="a" * 40, date="2026-12-01", **kw)


def test_missing_file_means_no_release(tmp_path: Path) -> None:
    assert releases.load(tmp_path / "releases.toml") == []


def test_round_trip_sorted_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "releases.toml"
    full = _rel(
        "0.2.0",
        artifacts=(releases.Artifact("kvetch-0.2.0-py3-none-any.whl", "b" * 64),),
        images=(releases.Image("ghcr.io/x/kvetch:v0.2.0", "sha256:" + "c" * 64, ("linux/amd64", "linux/arm64/v8")),),
        tiers={"linux/amd64/py3.11": 2, "linux/s390x/py3.11": 0},
    )
    for rel in (full, _rel("0.1.0"), _rel("0.2.0-rc.1")):
        releases.append(path, rel)
    loaded = releases.load(path)
    assert [r.version for r in loaded] == ["0.1.0", "0.2.0-rc.1", "0.2.0"]
    assert loaded[-1] == full
    assert releases.find(loaded, "v0.2.0") == full
    assert releases.find(loaded, "9.9.9") is None
    assert loaded[-1].tag == "v0.2.0"


def test_duplicate_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "releases.toml"
    releases.append(path, _rel("0.1.0"))
    with pytest.raises(ValueError, match="already in"):
        releases.append(path, _rel("0.1.0"))


def test_unknown_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "releases.toml"
    path.write_text("schema = 99\n")
    with pytest.raises(ValueError, match="unsupported releases schema"):
        releases.load(path)


def test_repository_releases_file_loads() -> None:
    for rel in releases.load(ROOT / "releases.toml"):
        assert len(rel.commit) == 40
