"""Version bump rules and refusals."""

from __future__ import annotations

import pytest
from kvetch_release import versioning as v


@pytest.mark.parametrize(
    ("current", "part", "expected"),
    [
        ("0.1.0", "patch", "0.1.1"),
        ("0.1.3", "minor", "0.2.0"),
        ("0.9.2", "major", "1.0.0"),
        ("0.1.0", "prerelease", "0.1.1-rc.1"),
        ("0.2.0-rc.1", "prerelease", "0.2.0-rc.2"),
        ("0.2.0-rc.2", "patch", "0.2.0"),
        ("v1.2.3", "patch", "1.2.4"),
    ],
)
def test_bump(current: str, part: str, expected: str) -> None:
    assert str(v.bump(current, part)) == expected


def test_ordering_puts_prereleases_first() -> None:
    versions = ["0.2.0", "0.2.0-rc.1", "0.1.10", "0.1.9", "0.2.0-rc.10", "0.2.0-rc.2"]
    assert [str(x) for x in sorted(map(v.parse, versions))] == [
        "0.1.9", "0.1.10", "0.2.0-rc.1", "0.2.0-rc.2", "0.2.0-rc.10", "0.2.0"]


@pytest.mark.parametrize("bad", ["1.2", "one.two.three", "1.2.3.4", "", "01.2.3"])
def test_invalid_versions_are_refused(bad: str) -> None:
    with pytest.raises(v.VersionError, match="not a semantic version"):
        v.parse(bad)


def test_unknown_bump_is_refused() -> None:
    with pytest.raises(v.VersionError, match="unknown bump"):
        v.bump("0.1.0", "micro")


def test_already_released_is_refused() -> None:
    with pytest.raises(v.VersionError, match="already released"):
        v.check_new("0.2.0", ["0.1.0", "0.2.0"])


@pytest.mark.parametrize("older", ["0.1.5", "0.2.0-rc.1", "0.0.9"])
def test_non_increasing_is_refused(older: str) -> None:
    with pytest.raises(v.VersionError, match=r"not newer than the latest release v0\.2\.0"):
        v.check_new(older, ["0.1.0", "0.2.0"])


def test_new_versions_are_accepted() -> None:
    assert str(v.check_new("0.2.1", ["0.1.0", "0.2.0"])) == "0.2.1"
    assert str(v.check_new("0.1.0", [])) == "0.1.0"


def test_version_file_round_trip(tmp_path) -> None:
    path = tmp_path / v.VERSION_FILE
    path.parent.mkdir(parents=True)
    path.write_text('"""doc"""\n\n__version__ = "0.1.0"\n\nOTHER = "0.1.0"\n')
    assert v.read_version(tmp_path) == "0.1.0"
    v.write_version(tmp_path, v.bump("0.1.0", "minor"))
    assert v.read_version(tmp_path) == "0.2.0"
    assert 'OTHER = "0.1.0"' in path.read_text()


def test_version_file_without_version_is_refused(tmp_path) -> None:
    path = tmp_path / v.VERSION_FILE
    path.parent.mkdir(parents=True)
    path.write_text("VERSION = '1'\n")
    with pytest.raises(v.VersionError):
        v.read_version(tmp_path)


def test_repository_version_is_semver() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    v.parse(v.read_version(root))
