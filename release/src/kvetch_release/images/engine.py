"""Optional: load and run an image with a Docker engine through the docker SDK.

Only used where a Docker engine is available (Debian ``docker.io``; ``dockerd``
is started when installed but not running). The daemonless build, push and
smoke path never imports this module."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from .oci import REF_NAME, Layout


def archive(layout: Layout, tag: str, arch: str, repo_tag: str) -> bytes:
    """A single-platform tarball ``docker load`` accepts (docker-archive ``manifest.json``
    plus the OCI ``index.json``), layers kept gzip-compressed."""
    manifest = layout.manifest_for(tag, arch)
    top = next(m for m in layout.read_top()["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag)
    index = layout.read_json(top["digest"])
    desc = next(m for m in index["manifests"] if m["platform"]["architecture"] == arch)
    blobs = [manifest["config"]["digest"], *[la["digest"] for la in manifest["layers"]], desc["digest"]]
    docker_manifest = [{
        "Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
        "RepoTags": [repo_tag],
        "Layers": ["blobs/sha256/" + la["digest"].split(":")[1] for la in manifest["layers"]],
    }]
    oci_index = {"schemaVersion": 2, "manifests": [{**{k: v for k, v in desc.items() if k != "platform"},
                                                      "annotations": {REF_NAME: repo_tag}}]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", json.dumps(oci_index).encode())
        add("manifest.json", json.dumps(docker_manifest).encode())
        for digest in blobs:
            add("blobs/sha256/" + digest.split(":")[1], layout.blob_path(digest).read_bytes())
    return buf.getvalue()


def client(start: bool = True):
    """A docker SDK client, starting ``dockerd`` when it is installed but not running."""
    import docker  # optional dependency (PyPI docker)

    try:
        c = docker.from_env()
        c.ping()
        return c
    except Exception:
        if not (start and shutil.which("dockerd")):
            raise
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "kvetch-dockerd.log"), "ab")  # noqa: SIM115
    subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            c = docker.from_env()
            c.ping()
            return c
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def load_and_version(layout_dir: Path, tag: str, arch: str) -> str:
    """Load ``arch``'s image into the engine and run ``kvetch --version`` in it."""
    c = client()
    repo_tag = f"kvetch-release-test:{tag}-{arch}"
    c.images.load(archive(Layout(layout_dir), tag, arch, repo_tag))
    out = c.containers.run(repo_tag, ["--version"], remove=True, platform=f"linux/{arch}")
    return out.decode() if isinstance(out, bytes) else str(out)
