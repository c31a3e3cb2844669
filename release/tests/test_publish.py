"""A publishing run in a throwaway clone (no remote): the version is bumped, fragments
move to changes/v<version>/, CHANGELOG.md gets the section, the commit is tagged and
the releases file records the artifacts; a second publish of it is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kvetch_release import artifacts, changelog, fragments, gitutil, releases, versioning
from kvetch_release.pipeline import Options, Pipeline, StepFailed

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clone") / "kvetch"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
    gitutil.git(path, "remote", "remove", "origin")  # nothing can be pushed anywhere
    gitutil.git(path, "config", "user.email", "release-test@example.invalid")
    gitutil.git(path, "config", "user.name", "release test")
    return path


def test_publish_in_clone(clone: Path, tmp_path: Path) -> None:
    current = versioning.read_version(clone)
    done = [r.version for r in releases.load(clone / "releases.toml")]
    version = str(versioning.bump(current, "minor")) if current in done else current
    pending = fragments.unreleased(clone / "changes", fragments.load_config(clone / "changes"))
    opts = Options(root=clone, version=version, out=tmp_path / "out", publish=True, date="2026-12-24",
                   skip=("images", "push", "smoke"), tests_override="test of the publish path",
                   evidence_dir=tmp_path / "evidence")
    state = Pipeline(opts, progress=lambda _: None).run()
    assert state["steps"]["publish"]["result"]["published"] is True
    assert versioning.read_version(clone) == version
    assert gitutil.tag_exists(clone, f"v{version}")
    moved = sorted(p.name for p in (clone / "changes" / f"v{version}").iterdir())
    assert moved == sorted(f.name for f in pending)
    text = (clone / "CHANGELOG.md").read_text()
    assert f"## v{version} (2026-12-24)" in text and "## Unreleased" not in text
    assert changelog.write(clone, check=True)  # regenerating gives the same file
    rel = releases.find(releases.load(clone / "releases.toml"), version)
    assert rel is not None and rel.commit == gitutil.git(clone, "rev-parse", f"v{version}^{{commit}}")
    assert {a.name: a.sha256 for a in rel.artifacts} == artifacts.read_sums(tmp_path / "out" / "dist" / "SHA256SUMS")
    assert gitutil.dirty_paths(clone) == []  # everything committed
    # the published version cannot be published again
    again = Options(root=clone, version=version, out=tmp_path / "again", publish=True,
                    skip=("images", "push", "smoke"), tests_override="x", evidence_dir=tmp_path / "evidence")
    with pytest.raises(StepFailed, match="already released"):
        Pipeline(again, progress=lambda _: None).run()
