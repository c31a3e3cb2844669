"""The repository's own change fragments are valid and CHANGELOG.md is generated from them."""

from __future__ import annotations

from pathlib import Path

from kvetch_release import changelog, fragments

ROOT = Path(__file__).resolve().parents[2]


def test_fragments_are_valid() -> None:
    changes = ROOT / "changes"
    config = fragments.load_config(changes)
    found = fragments.unreleased(changes, config)
    for directory in fragments.released_dirs(changes).values():
        found += fragments.read_dir(directory, config)
    assert found, "no change fragment in changes/"


def test_changelog_is_up_to_date() -> None:
    assert changelog.write(ROOT, check=True), "CHANGELOG.md is stale: run `nox -s changelog`"
