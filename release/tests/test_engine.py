"""Where a Docker engine is available, the docker SDK loads and runs the image too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kvetch_release.images import engine, oci

# timeout: the first test to ask for the session fixture pays for the whole dry run
pytestmark = [pytest.mark.xdist_group("kvetch-release-dry-run"), pytest.mark.slow, pytest.mark.timeout(1800)]


def _engine_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return shutil.which("dockerd") is not None


def test_docker_archive_shape(dry_run: dict) -> None:
    import io
    import json
    import tarfile

    img = dry_run["state"]["steps"]["images"]["result"]
    data = engine.archive(oci.Layout(Path(img["layout"])), img["tag"], "amd64", "kvetch:test")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert {"index.json", "oci-layout", "manifest.json"} <= names
    assert manifest[0]["RepoTags"] == ["kvetch:test"] and len(manifest[0]["Layers"]) == 2
    assert all(p in names for p in [manifest[0]["Config"], *manifest[0]["Layers"]])


@pytest.mark.skipif(not _engine_available(), reason="no Docker engine on this machine (daemonless path covers it)")
def test_engine_runs_image(dry_run: dict) -> None:
    img = dry_run["state"]["steps"]["images"]["result"]
    out = engine.load_and_version(Path(img["layout"]), img["tag"], "amd64")
    assert dry_run["version"] in out
