"""Member and cluster IDs derived the way etcd derives them, so IDs are stable and comparable."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable


def member_id(peer_urls: Iterable[str], cluster_token: str, now_unix: int | None = None) -> int:
    """SHA-1 over the sorted peer URLs, the cluster token (and a time for added members); first 8 bytes."""
    data = "".join(sorted(peer_urls)) + cluster_token
    if now_unix is not None:
        data += str(now_unix)
    return struct.unpack(">Q", hashlib.sha1(data.encode()).digest()[:8])[0]


def cluster_id(member_ids: Iterable[int]) -> int:
    """SHA-1 over the sorted member IDs as 8-byte big-endian integers; first 8 bytes."""
    blob = b"".join(struct.pack(">Q", mid) for mid in sorted(member_ids))
    return struct.unpack(">Q", hashlib.sha1(blob).digest()[:8])[0]


def parse_initial_cluster(text: str) -> dict[str, list[str]]:
    """Parse ``name=url,name=url2,other=url3`` into {name: [urls]} (order kept)."""
    out: dict[str, list[str]] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"invalid initial-cluster entry {part!r}")
        name, url = part.split("=", 1)
        out.setdefault(name, []).append(url)
    return out
