"""Changelog and release notes from fixture fragments, against golden files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from kvetch_release import changelog, fragments, notes

FIXTURES = Path(__file__).parent / "fixtures" / "changelog"
UPDATE = os.environ.get("KVETCH_UPDATE_GOLDEN") == "1"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "changes", tmp_path / "changes")
    shutil.copyfile(FIXTURES / "releases.toml", tmp_path / "releases.toml")
    return tmp_path


def _golden(name: str, text: str) -> None:
    path = FIXTURES / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (KVETCH_UPDATE_GOLDEN=1 to accept)"


def test_changelog_matches_golden(repo: Path) -> None:
    _golden("CHANGELOG.expected.md", changelog.generate(repo))


def test_etcd_rule_patch_lists_own_minor_lists_since_previous_minor(repo: Path) -> None:
    by_title = {s.title: s for s in changelog.sections(repo)}
    refs = {t: sorted(e["ref"] for g in s.components for e in g.entries) for t, s in by_title.items()}
    assert refs["v0.2.1 (2026-03-15)"] == ["5"]
    # X.Y.0: everything since 0.1.0, including 0.1.1 and the rc, the backported fix once
    assert refs["v0.2.0 (2026-03-01)"] == ["+retry", "2", "3", "4"]
    assert refs["v0.2.0-rc.1 (2026-02-20)"] == ["3"]
    assert refs["v0.1.1 (2026-02-01)"] == ["+retry", "2"]
    assert refs["v0.1.0 (2026-01-10)"] == ["1"]
    assert refs["Unreleased"] == ["+lmdb", "6"]
    assert next(iter(by_title)) == "Unreleased"  # newest first


def test_upcoming_minor_counts_from_previous_minor(repo: Path) -> None:
    section = changelog.sections(repo, upcoming=("0.3.0", "2026-04-01"))[0]
    assert section.title == "v0.3.0 (2026-04-01)"
    assert section.since == "0.2.0"
    refs = sorted(e["ref"] for g in section.components for e in g.entries)
    assert refs == ["+lmdb", "5", "6"]


def test_upcoming_patch_lists_only_unreleased(repo: Path) -> None:
    section = changelog.sections(repo, upcoming=("0.2.2", "2026-04-01"))[0]
    assert sorted(e["ref"] for g in section.components for e in g.entries) == ["+lmdb", "6"]


def test_entries_link_to_their_change(repo: Path) -> None:
    text = changelog.generate(repo)
    assert "([#4](https://example.test/kvetch/issues/4))" in text
    assert "https://example.test/kvetch/blob/v0.1.1/changes/v0.1.1/+retry.client.fix.md" in text


def test_move_to_release_then_regenerate(repo: Path) -> None:
    moved = fragments.move_to_release(repo / "changes", "0.3.0")
    assert sorted(p.name for p in moved) == ["+lmdb.server.dependency.md", "6.release.deprecation.md"]
    assert fragments.unreleased(repo / "changes", fragments.load_config(repo / "changes")) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("fix-thing.md", "name must be"),
        ("7.storage.fix.md", "unknown component"),
        ("7.server.bugfix.md", "unknown type"),
    ],
)
def test_bad_fragments_are_refused(repo: Path, name: str, message: str) -> None:
    (repo / "changes" / name).write_text("text\n")
    with pytest.raises(fragments.FragmentError, match=message):
        changelog.generate(repo)


def test_empty_fragment_is_refused(repo: Path) -> None:
    (repo / "changes" / "7.server.fix.md").write_text("  \n")
    with pytest.raises(fragments.FragmentError, match="empty"):
        changelog.generate(repo)


def test_notes_match_golden_with_compat_report(repo: Path) -> None:
    report = repo / "report.json"
    report.write_text(json.dumps({"results": [
        {"from": "0.2.1", "to": "0.3.0", "kind": "upgrade", "passed": True},
        {"from_version": "v0.3.0", "to_version": "v0.2.1", "status": "fail"},
        {"from": "0.1.0", "to": "0.2.0", "passed": True},
    ]}))
    text = notes.generate(repo, "0.3.0", "2026-04-01", sums={"kvetch-0.3.0-py3-none-any.whl": "ab" * 32},
                          images=[{"ref": "registry.test/kvetch:v0.3.0", "digest": "sha256:" + "cd" * 32,
                                   "platforms": ["linux/amd64", "linux/arm64/v8"]}],
                          tiers_markdown="| Platform | Tier |\n|---|---|\n| linux/amd64/py3.11 | Tier 2 |",
                          compat_report=report)
    _golden("NOTES.expected.md", text)
    assert "| upgrade | v0.2.1 | v0.3.0 | verified |" in text
    assert "| downgrade | v0.3.0 | v0.2.1 | FAILED |" in text
    assert "0.1.0" not in text.split("## Upgrade")[1].split("## Supported")[0]


def test_notes_degrade_without_compat_report(repo: Path) -> None:
    text = notes.generate(repo, "0.3.0", "2026-04-01", sums={}, compat_report=repo / "absent.json")
    assert "No compatibility-matrix report was found" in text
    assert "No support-tier report was computed" in text
    (repo / "garbage.json").write_text("{not json")
    text = notes.generate(repo, "0.3.0", "2026-04-01", sums={}, compat_report=repo / "garbage.json")
    assert "No compatibility-matrix report was found" in text
