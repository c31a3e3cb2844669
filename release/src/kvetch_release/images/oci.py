"""An OCI image layout writer (blobs, manifests, configs, image index) and
reader, in pure Python: deterministic gzip layers, no daemon, no external tool."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


class _Hashing(io.RawIOBase):
    """A write-only sink that hashes and counts what goes through, then forwards it."""

    def __init__(self, sink) -> None:
        self.sink, self.h, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.h.update(b)
        self.size += len(b)
        if self.sink is not None:
            self.sink.write(b)
        return len(b)


class Layout:
    """An OCI image layout directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        return self.path / "blobs" / algo / hexd

    def add_bytes(self, data: bytes, media_type: str, **extra) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            path.write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def add_json(self, obj: dict, media_type: str, **extra) -> dict:
        return self.add_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), media_type, **extra)

    def add_layer(self, tar_path: Path, cache: Path | None = None) -> tuple[dict, str]:
        """Gzip ``tar_path`` deterministically into a blob; return (descriptor, diff_id).
        With ``cache``, the compressed blob is reused when the same tar was compressed before."""
        raw = hashlib.sha256()
        with tar_path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                raw.update(chunk)
        diff_id = "sha256:" + raw.hexdigest()
        cached = cache / f"{raw.hexdigest()}.tar.gz" if cache else None
        if cached and cached.exists():
            meta = json.loads(cached.with_suffix(".json").read_text())
            dest = self.blob_path(meta["digest"])
            if not dest.exists():
                shutil.copyfile(cached, dest)
            return {"mediaType": LAYER, "digest": meta["digest"], "size": meta["size"]}, diff_id
        tmp = self.path / "blobs" / "layer.partial"
        with tmp.open("wb") as out:
            sink = _Hashing(out)
            with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0) as gz, tar_path.open("rb") as fh:
                shutil.copyfileobj(fh, gz, 1 << 20)
        digest = "sha256:" + sink.h.hexdigest()
        os.replace(tmp, self.blob_path(digest))
        if cached:
            cache.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.blob_path(digest), cached)
            cached.with_suffix(".json").write_text(json.dumps({"digest": digest, "size": sink.size}))
        return {"mediaType": LAYER, "digest": digest, "size": sink.size}, diff_id

    def add_image(self, *, arch: str, variant: str, layers: list[tuple[dict, str]], config: dict,
                  history: list[dict], created: str, labels: dict[str, str]) -> dict:
        """Write the image config and manifest; return the manifest descriptor with its platform."""
        cfg = {
            "created": created, "architecture": arch, "os": "linux",
            "config": {**config, "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
            "history": history,
        }
        if variant:
            cfg["variant"] = variant
        cfg_desc = self.add_json(cfg, CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": cfg_desc,
                    "layers": [desc for desc, _ in layers], "annotations": labels}
        plat = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        return self.add_json(manifest, MANIFEST, platform=plat)

    def add_index(self, manifests: list[dict], tag: str, annotations: dict[str, str]) -> dict:
        """Write the image index of all platforms and name it ``tag`` in ``index.json``."""
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests, "annotations": annotations}
        desc = self.add_json(index, INDEX, annotations={REF_NAME: tag})
        top = self.read_top()
        top["manifests"] = [m for m in top["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag] + [desc]
        (self.path / "index.json").write_text(json.dumps(top, indent=2))
        return desc

    def read_top(self) -> dict:
        path = self.path / "index.json"
        if path.exists():
            return json.loads(path.read_text())
        return {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}

    def read_json(self, digest: str) -> dict:
        return json.loads(self.blob_path(digest).read_text())

    def manifest_for(self, tag: str, arch: str) -> dict:
        top = next(m for m in self.read_top()["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag)
        index = self.read_json(top["digest"])
        desc = next(m for m in index["manifests"] if m["platform"]["architecture"] == arch)
        return self.read_json(desc["digest"])

    def unpack(self, tag: str, arch: str, dest: Path) -> dict:
        """Extract the layers of ``tag``'s ``arch`` image into ``dest`` (a root filesystem).
        Returns the image config."""
        manifest = self.manifest_for(tag, arch)
        dest.mkdir(parents=True, exist_ok=True)
        for layer in manifest["layers"]:
            with tarfile.open(self.blob_path(layer["digest"]), "r:gz") as tar:
                members = [m for m in tar.getmembers() if not (m.ischr() or m.isblk() or m.isfifo())]
                tar.extractall(dest, members=members, filter="fully_trusted")
        return self.read_json(manifest["config"]["digest"])


def tar_directory(src: Path, out: Path, mtime: int) -> Path:
    """A reproducible tar of ``src`` (sorted, root-owned, fixed mtime) with paths relative to it."""
    def norm(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = mtime
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src).as_posix()
            tar.add(path, arcname=rel, recursive=False, filter=norm)
    return out
