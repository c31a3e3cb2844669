"""Shared, expensive fixtures of the release tests: one dry-run release of the real
repository per test session (artifacts, all four images, local registry push,
amd64 and arm64 smoke tests), reused by every test that inspects it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kvetch_release import gitutil, releases, versioning
from kvetch_release.pipeline import Options, Pipeline

ROOT = Path(__file__).resolve().parents[2]
# Every test using ``dry_run`` carries ``pytest.mark.xdist_group("kvetch-release-dry-run")``
# so pytest-xdist (--dist loadgroup) runs them on one worker and the release is cut once.


@pytest.fixture(scope="session")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("release")
    current = versioning.read_version(ROOT)
    done = [r.version for r in releases.load(ROOT / "releases.toml")]
    version = str(versioning.bump(current, "patch")) if current in done else current
    # the commit is pinned: others may commit to the shared tree while the session runs
    opts = Options(root=ROOT, version=version, out=out, local_registry=True, evidence_dir=out / "evidence",
                   smoke_arches=("amd64", "arm64"), commit=gitutil.head(ROOT))
    lines: list[str] = []
    t0 = time.monotonic()
    state = Pipeline(opts, progress=lines.append).run()
    state["total_seconds"] = round(time.monotonic() - t0, 1)
    (out / "progress.log").write_text("\n".join(lines) + "\n")
    print("release dry run step timings:", json.dumps({k: v.get("seconds") for k, v in state["steps"].items()}))
    return {"state": state, "out": out, "version": version, "opts": opts}
