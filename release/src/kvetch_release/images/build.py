"""Build the multi-architecture image of the server as one OCI image index:
per architecture a cached Debian base layer and an application layer, written
to an OCI image layout; optionally pushed and verified with skopeo, and smoke
tested per architecture."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import app, oci, rootfs, sbom
from .arches import ARCHES, Arch

Progress = Callable[[str], None]


@dataclass
class ImageResult:
    layout: Path
    tag: str
    index_digest: str
    manifests: dict[str, str]  # arch -> manifest digest
    facts: dict[str, dict]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def platforms(self) -> list[str]:
        return [ARCHES[a].platform for a in self.manifests]


def build(
    *, tree: Path, wheel: Path, version: str, commit: str, out: Path,
    arches: list[str], cache: Path | None = None, epoch: int = 0, progress: Progress = print,
) -> ImageResult:
    """Build every architecture's image into ``out/oci`` under tag ``v<version>``."""
    cache = cache or rootfs.cache_dir()
    layout = oci.Layout(out / "oci")
    tag = f"v{version}"
    created = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "kvetch",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    }
    config = {
        "Entrypoint": ["/usr/local/bin/kvetch"],
        "Cmd": ["--data-dir", "/var/lib/kvetch", "--listen-client-urls", "http://0.0.0.0:2379",
                "--advertise-client-urls", "http://0.0.0.0:2379"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONUNBUFFERED=1"],
        "ExposedPorts": {"2379/tcp": {}, "2380/tcp": {}},
        "Volumes": {"/var/lib/kvetch": {}},
        "WorkingDir": "/",
    }
    manifests: list[dict] = []
    digests: dict[str, str] = {}
    facts: dict[str, dict] = {}
    timings: dict[str, float] = {}
    for name in arches:
        arch: Arch = ARCHES[name]
        t0 = time.monotonic()
        progress(f"{arch.platform}: base root filesystem (mmdebstrap, cached)")
        base_tar = rootfs.build(arch, rootfs.packages_for(arch), cache=cache)
        base = layout.add_layer(base_tar, cache=cache / "layers")
        t1 = time.monotonic()
        progress(f"{arch.platform}: application layer")
        stage = out / "stage" / arch.name
        arch_facts = app.stage(arch, wheel, stage, server_src=tree / "server" / "src", cache=cache)
        sbom.write(out / "sbom" / f"kvetch-{version}-{arch.name}.cdx.json", stage=stage, arch=arch.name,
                   version=version, debian_packages=rootfs.packages_for(arch))
        app_tar = oci.tar_directory(stage, out / "stage" / f"app-{arch.name}.tar", epoch)
        app_layer = layout.add_layer(app_tar)
        desc = layout.add_image(
            arch=arch.name, variant=arch.variant, layers=[base, app_layer], config=config, created=created,
            labels=labels,
            history=[
                {"created": created, "created_by": "mmdebstrap --variant=extract " + " ".join(rootfs.packages_for(arch)),
                 "comment": f"Debian {rootfs.SUITE} {arch.debian}"},
                {"created": created, "created_by": "kvetch-release images: " + arch_facts["dependencies"]},
            ],
        )
        manifests.append(desc)
        digests[arch.name] = desc["digest"]
        facts[arch.name] = {**arch_facts, "base": base[0]["digest"], "app": app_layer[0]["digest"]}
        timings[arch.name] = round(time.monotonic() - t0, 1)
        progress(f"{arch.platform}: done in {timings[arch.name]}s (base {t1 - t0:.1f}s)")
    index = layout.add_index(manifests, tag, labels)
    return ImageResult(out / "oci", tag, index["digest"], digests, facts, timings)
