"""The multi-architecture image of the dry-run release: one OCI image index for
linux/amd64, arm64, ppc64le and s390x, pushed to a local registry (Debian
docker-registry on 127.0.0.1) and verified per platform with skopeo; the
arm64 image's server smoke tested under qemu user emulation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from kvetch_release.images import arches, oci, registry

# timeout: the first test to ask for the session fixture pays for the whole dry run
pytestmark = [pytest.mark.xdist_group("kvetch-release-dry-run"), pytest.mark.slow, pytest.mark.timeout(1800)]
PLATFORMS = {"amd64": "", "arm64": "v8", "ppc64le": "", "s390x": ""}


def test_layout_is_one_index_of_four_platforms(dry_run: dict) -> None:
    img = dry_run["state"]["steps"]["images"]["result"]
    layout = oci.Layout(Path(img["layout"]))
    top = layout.read_top()
    (entry,) = [m for m in top["manifests"] if m["annotations"][oci.REF_NAME] == img["tag"]]
    assert entry["mediaType"] == oci.INDEX and entry["digest"] == img["index_digest"]
    index = layout.read_json(entry["digest"])
    plats = {m["platform"]["architecture"]: m["platform"].get("variant", "") for m in index["manifests"]}
    assert plats == PLATFORMS
    for m in index["manifests"]:
        manifest = layout.read_json(m["digest"])
        config = layout.read_json(manifest["config"]["digest"])
        assert config["architecture"] == m["platform"]["architecture"]
        assert config["config"]["Labels"]["org.opencontainers.image.version"] == dry_run["version"]
        assert len(manifest["layers"]) == 2  # Debian base + application


def test_pushed_and_inspected_per_platform(dry_run: dict, tmp_path: Path) -> None:
    img = dry_run["state"]["steps"]["images"]["result"]
    layout = oci.Layout(Path(img["layout"]))
    with registry.LocalRegistry(tmp_path / "registry") as reg:
        ref = f"{reg.host}/kvetch:{img['tag']}"
        digest = registry.push(Path(img["layout"]), img["tag"], ref)
        assert digest == img["index_digest"]
        raw, _ = registry.inspect_raw(ref)
        assert raw["mediaType"] == oci.INDEX
        for arch, variant in PLATFORMS.items():
            info = registry.inspect_platform(ref, arch, variant)
            assert (info["Os"], info["Architecture"]) == ("linux", arch)
            want = [layer["digest"] for layer in layout.manifest_for(img["tag"], arch)["layers"]]
            assert info["Layers"] == want
    # the pipeline's own push went through the same checks
    assert set(dry_run["state"]["steps"]["push"]["result"]["platforms"]) == {
        arches.ARCHES[a].platform for a in PLATFORMS}


def test_layers_are_reproducible(dry_run: dict) -> None:
    facts = dry_run["state"]["steps"]["images"]["result"]["facts"]
    assert facts["ppc64le"]["app"] and facts["ppc64le"]["dependencies"].startswith("Debian")
    assert "regenerated with grpcio-tools==1.51.1" in facts["s390x"]["dependencies"]
    assert facts["arm64"]["dependencies"] == "PyPI wheels for manylinux aarch64"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_smoke(dry_run: dict, arch: str) -> None:
    checks = {c["name"]: c for c in dry_run["state"]["steps"]["smoke"]["result"]["results"][arch]}
    assert checks["kvetch --version"]["passed"], checks["kvetch --version"]["detail"]
    assert dry_run["version"] in checks["kvetch --version"]["detail"]
    assert checks["put/get"]["passed"], checks["put/get"]["detail"]
    if arch == "arm64":
        assert checks["kvetch --version"]["detail"].startswith(("[binfmt]", "[qemu-prefix]"))


def test_smoke_evidence_is_tagged(dry_run: dict) -> None:
    path = dry_run["out"] / "evidence" / "smoke" / "arm64.json"
    data = json.loads(path.read_text())
    assert data["platform"] == "linux/arm64/py3.11" and data["kind"] == "smoke" and data["emulated"] is True


def test_image_runs_foreign_python_under_qemu(dry_run: dict, tmp_path: Path) -> None:
    """The arm64 root filesystem really is arm64: its python reports aarch64."""
    from kvetch_release.images import smoke

    img = dry_run["state"]["steps"]["images"]["result"]
    root = tmp_path / "root"
    oci.Layout(Path(img["layout"])).unpack(img["tag"], "arm64", root)
    arch = arches.ARCHES["arm64"]
    prefix = smoke.prepare_root(root, arch, smoke.ensure_binfmt(arch))
    out = subprocess.run([*prefix, "/usr/bin/python3", "-c", "import platform; print(platform.machine())"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "aarch64", out.stderr


def test_sbom_per_architecture(dry_run: dict) -> None:
    for arch in PLATFORMS:
        path = dry_run["out"] / "images" / "sbom" / f"kvetch-{dry_run['version']}-{arch}.cdx.json"
        doc = json.loads(path.read_text())
        assert doc["bomFormat"] == "CycloneDX"
        names = {c["name"] for c in doc["components"]}
        assert {"kvetch", "python3"} <= names
        assert ("grpcio" in names) == (arch in ("amd64", "arm64"))  # Debian's python3-grpcio elsewhere
        assert ("python3-grpcio" in names) == (arch in ("ppc64le", "s390x"))
