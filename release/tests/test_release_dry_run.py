"""A dry-run release of the real repository: wheels and sdists of every distribution,
SHA256SUMS re-read and verified, notes, tiers, and a repository left untouched."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from kvetch_release import artifacts, releases
from kvetch_release.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
#: shared with the other users of the session-scoped ``dry_run`` fixture (see conftest.py)
# timeout: the first test to ask for the session fixture pays for the whole dry run
pytestmark = [pytest.mark.xdist_group("kvetch-release-dry-run"), pytest.mark.slow, pytest.mark.timeout(1800)]
WATCHED = ["server/src/kvetch/version.py", "releases.toml", "CHANGELOG.md"]


def _digest(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update((ROOT / p).read_bytes())
    h.update("\n".join(sorted(q.name for q in (ROOT / "changes").iterdir())).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def before() -> str:
    return _digest(WATCHED)


def test_every_step_done(dry_run: dict) -> None:
    steps = dry_run["state"]["steps"]
    assert [s for s, v in steps.items() if v["status"] != "done"] == []
    assert not dry_run["state"]["publish"]


def test_wheels_and_sdists_of_every_distribution(dry_run: dict) -> None:
    dist = dry_run["out"] / "dist"
    names = sorted(p.name for p in dist.iterdir())
    v = dry_run["version"]
    for stem in (f"kvetch-{v}", "kvetch_release-", "kvetch_compat-"):
        assert any(n.startswith(stem) and n.endswith(".whl") for n in names), (stem, names)
        assert any(n.startswith(stem) and n.endswith(".tar.gz") for n in names), (stem, names)


def test_sha256sums_verified_and_tampering_detected(dry_run: dict, tmp_path: Path) -> None:
    dist = dry_run["out"] / "dist"
    sums = artifacts.read_sums(dist / "SHA256SUMS")
    assert set(sums) == {p.name for p in dist.iterdir() if p.name != "SHA256SUMS"}
    assert artifacts.verify(dist) == sorted(sums)
    copy = tmp_path / "dist"
    shutil.copytree(dist, copy)
    wheel = next(copy.glob("kvetch-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(artifacts.VerifyError, match="sha256 differs"):
        artifacts.verify(copy)
    (copy / "extra.whl").write_bytes(b"x")
    with pytest.raises(artifacts.VerifyError, match="differently"):
        artifacts.verify(copy)


def test_notes(dry_run: dict) -> None:
    v = dry_run["version"]
    text = (dry_run["out"] / f"RELEASE-NOTES-v{v}.md").read_text()
    assert text.startswith(f"# kvetch v{v} (")
    for heading in ("## Summary", "## Changes", "## Upgrade and downgrade paths", "## Supported platforms",
                    "## Install", "## Checksums"):
        assert heading in text
    sums = artifacts.read_sums(dry_run["out"] / "dist" / "SHA256SUMS")
    for name, digest in sums.items():
        assert f"{digest}  {name}" in text
    assert "| Platform | Tier |" in text
    # every unreleased fragment of the repository is in the notes
    fragments = sorted(p for p in (ROOT / "changes").glob("*.md"))
    assert fragments, "no unreleased fragment: the release preconditions would refuse"
    for frag in fragments:
        first = frag.read_text().strip().splitlines()[0]
        assert first.split("`")[0][:40] in text, frag.name


def test_changelog_preview_and_releases_entry(dry_run: dict) -> None:
    v = dry_run["version"]
    changelog = (dry_run["out"] / "CHANGELOG.md").read_text()
    assert f"## v{v} (" in changelog and "## Unreleased" not in changelog
    preview = releases.load(dry_run["out"] / "releases.toml")
    entry = releases.find(preview, v)
    assert entry and {a.name for a in entry.artifacts} == set(
        artifacts.read_sums(dry_run["out"] / "dist" / "SHA256SUMS"))
    assert entry.tiers  # computed from this run's evidence


def test_tiers_computed_from_this_runs_evidence(dry_run: dict) -> None:
    tiers = dry_run["state"]["steps"]["tiers"]["result"]["tiers"]
    assert set(tiers) == {"linux/amd64/py3.11", "linux/arm64/py3.11", "linux/ppc64le/py3.11", "linux/s390x/py3.11"}
    smoke = dry_run["state"]["steps"]["smoke"]["result"]["results"]
    # amd64 and arm64 were smoke tested here: a green smoke + build gives at least tier 3
    for arch in ("amd64", "arm64"):
        green = all(c["passed"] for c in smoke[arch])
        assert (tiers[f"linux/{arch}/py3.11"] >= 1) == green
    assert tiers["linux/s390x/py3.11"] == 0  # no smoke evidence collected for it in this run


def test_dry_run_left_the_repository_alone(dry_run: dict, before: str) -> None:
    assert _digest(WATCHED) == before


def test_resume_skips_done_steps(dry_run: dict) -> None:
    lines: list[str] = []
    state = Pipeline(dry_run["opts"], progress=lines.append).run()
    assert all(v["status"] in ("done", "skipped") for v in state["steps"].values())
    assert sum("already done" in line for line in lines) == len(state["steps"])
    lines.clear()
    Pipeline(dry_run["opts"], progress=lines.append).run(only=("verify",))
    assert lines[0] == "[verify] …"
