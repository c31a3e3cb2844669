"""Checks that must hold before anything is built: clean tree, tests green (or an
explicit override), version not released and increasing, fragments present,
tag free. Each check returns a Finding; the caller decides whether to stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import evidence, fragments, gitutil, releases, versioning


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str


def clean_tree(root: Path) -> Finding:
    dirty = gitutil.dirty_paths(root)
    if dirty:
        shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
        return Finding("clean tree", False, f"{len(dirty)} uncommitted path(s): {shown}")
    return Finding("clean tree", True, "working tree matches HEAD")


def tests_green(root: Path, commit: str, evidence_dir: Path, override: str | None) -> Finding:
    if override:
        return Finding("tests green", True, f"overridden: {override}")
    runs = [r for r in evidence.load_dir(evidence_dir) if r.commit == commit and r.kind not in ("smoke", "build")]
    if not runs:
        return Finding("tests green", False,
                       f"no test evidence for {commit[:12]} in {evidence_dir} (run `nox -s tiers` or pass --tests-override REASON)")
    bad = [r for r in runs if not r.passed]
    if bad:
        return Finding("tests green", False, "failing: " + ", ".join(f"{r.platform} {r.kind}" for r in bad))
    return Finding("tests green", True, f"{sum(r.tests for r in runs)} tests passed in {len(runs)} run(s)")


def version_new(root: Path, version: str) -> Finding:
    try:
        versioning.check_new(version, [r.version for r in releases.load(root / "releases.toml")])
    except versioning.VersionError as exc:
        return Finding("version", False, str(exc))
    if gitutil.tag_exists(root, f"v{version}"):
        return Finding("version", False, f"tag v{version} already exists")
    return Finding("version", True, f"v{version} is new and newer than every release")


def fragments_present(root: Path) -> Finding:
    changes = root / "changes"
    try:
        pending = fragments.unreleased(changes, fragments.load_config(changes))
    except fragments.FragmentError as exc:
        return Finding("changelog fragments", False, str(exc))
    if not pending:
        return Finding("changelog fragments", False, "no unreleased fragment in changes/ (add one per change)")
    return Finding("changelog fragments", True, f"{len(pending)} unreleased fragment(s)")


def check_all(root: Path, version: str, commit: str, evidence_dir: Path, tests_override: str | None) -> list[Finding]:
    return [
        clean_tree(root),
        tests_green(root, commit, evidence_dir, tests_override),
        version_new(root, version),
        fragments_present(root),
    ]
