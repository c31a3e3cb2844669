"""Offline snapshot files: verify, inspect and restore a saved backend snapshot.

A snapshot as ``etcdctl snapshot save`` / ``kvetchctl snapshot save`` writes
it is the backend file (LMDB) followed by a 32-byte SHA-256 of the file's
bytes. ``status`` reports etcd's fields (hash, revision, total keys, total
size); ``restore`` builds a fresh data dir from it for a new member.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import crc32c

from kvetch.storage.backend import ETCD_BUCKETS, KEY, MEMBERS, MEMBERS_REMOVED, META, Backend, db_path

SHA_LEN = 32


class SnapshotError(Exception):
    """A snapshot file that cannot be used."""


@dataclass
class SnapshotStatus:
    hash: int
    revision: int
    total_keys: int
    total_size: int


def has_checksum(path: Path) -> bool:
    """etcd's rule: a streamed snapshot is a multiple of 512 bytes plus the 32-byte hash."""
    return path.stat().st_size % 512 == SHA_LEN


def verify(path: Path) -> None:
    """Check the trailing SHA-256 (if present) against the file's contents."""
    if not has_checksum(path):
        return
    size = path.stat().st_size - SHA_LEN
    h = hashlib.sha256()
    with path.open("rb") as f:
        remaining = size
        while remaining:
            chunk = f.read(min(1 << 20, remaining))
            if not chunk:
                raise SnapshotError(f"{path}: truncated")
            h.update(chunk)
            remaining -= len(chunk)
        expected = f.read(SHA_LEN)
    if h.digest() != expected:
        raise SnapshotError(f"expected sha256 {expected.hex()}, got {h.hexdigest()}")


def _plain_copy(path: Path, dest: Path) -> None:
    """Copy the backend bytes of a snapshot (without its hash trailer) to ``dest``."""
    size = path.stat().st_size - (SHA_LEN if has_checksum(path) else 0)
    with path.open("rb") as src, dest.open("wb") as out:
        remaining = size
        while remaining:
            chunk = src.read(min(1 << 20, remaining))
            if not chunk:
                raise SnapshotError(f"{path}: truncated")
            out.write(chunk)
            remaining -= len(chunk)
        out.flush()
        os.fsync(out.fileno())


def status(path: Path) -> SnapshotStatus:
    verify(path)
    with tempfile.TemporaryDirectory(prefix="kvetchutl-") as tmp:
        copy = Path(tmp) / "db"
        _plain_copy(path, copy)
        backend = Backend(copy)
        try:
            h = 0
            keys = 0
            revision = 0
            with backend.read() as rtx:
                for name in ETCD_BUCKETS:
                    h = crc32c.crc32c(name, h)
                    for k, v in rtx.items(name):
                        h = crc32c.crc32c(k, h)
                        h = crc32c.crc32c(v, h)
                        keys += 1
                        if name == KEY:
                            revision = max(revision, struct.unpack_from(">Q", k)[0])
            size = copy.stat().st_size
        finally:
            backend.close()
    return SnapshotStatus(hash=h, revision=revision, total_keys=keys, total_size=size)


def restore(path: Path, data_dir: Path) -> None:
    """Create ``data_dir`` from a snapshot: the backend with membership and WAL state reset.

    The restored member starts a new cluster (like ``etcdutl snapshot restore``):
    the consistent index is cleared so the new WAL starts from 1, members are
    re-created from the new member's flags when it starts.
    """
    verify(path)
    if (data_dir / "member").exists():
        raise SnapshotError(f"data-dir {str(data_dir)!r} exists")
    target = Path(db_path(data_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restore")
    _plain_copy(path, tmp)
    os.replace(tmp, target)
    backend = Backend(target)
    try:
        with backend.write() as wtx:
            for bucket in (MEMBERS, MEMBERS_REMOVED):
                for k, _ in list(wtx.items(bucket)):
                    wtx.delete(bucket, bytes(k))
            for meta_key in (b"consistent_index", b"term", b"kvetch_cluster_id"):
                wtx.delete(META, meta_key)
        backend.sync()
    finally:
        backend.close()
