"""Cluster version, storage version and the start-up version checks.

The cluster version is the MAJOR.MINOR every member can speak. The leader
decides it (``decide``) from the server versions of all members, learned from
the peers' messages: the minimum of them, raised when every member is newer,
never above any member, and frozen while any member's version is unknown. An
enabled downgrade pins it to the downgrade target instead. The value travels
through the log (``cluster_version_set``) and is persisted in the backend.

The storage version (schema) is recorded in the backend's meta bucket and
follows the cluster version one minor at a time (``migrations``).
"""

from __future__ import annotations

from collections.abc import Iterable

from kvetch.version import CLUSTER_VERSION, major_minor

NOT_DECIDED = ""


def parse_mm(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def fmt_mm(mm: tuple[int, int]) -> str:
    return f"{mm[0]}.{mm[1]}"


def decide(current: str, member_versions: Iterable[str | None], downgrade_target: str | None) -> str | None:
    """The cluster version the leader should set now, or None to leave it as it is."""
    versions = list(member_versions)
    if downgrade_target:
        target = major_minor(downgrade_target + ".0")
        return target if target != current else None
    if not versions or any(v is None for v in versions):
        return None  # an unreachable member freezes the decision
    lowest = min(parse_mm(v) for v in versions if v is not None)
    if current == NOT_DECIDED:
        return fmt_mm(lowest)
    if lowest > parse_mm(current):
        return fmt_mm(lowest)  # every member is newer: raise
    return None  # never lowered except through the Downgrade API


class VersionRefused(SystemExit):
    """The binary may not run on this data dir (raised before anything is written)."""


def check_can_start(cluster_version: str, storage_version: str, downgrade_target: str | None,
                    server_version: str = CLUSTER_VERSION) -> None:
    """Refuse to start a binary older than the cluster or the storage, unless a downgrade to it is on."""
    own = parse_mm(server_version)
    allowed = bool(downgrade_target) and parse_mm(downgrade_target or "0.0") == own
    if cluster_version and parse_mm(cluster_version) > own and not allowed:
        raise VersionRefused(
            f"kvetch: invalid downgrade; server version is lower than determined cluster version "
            f"(current-server-version={server_version}, determined-cluster-version={cluster_version})")
    if storage_version and parse_mm(storage_version) > own and not allowed:
        raise VersionRefused(
            f"kvetch: storage version {storage_version} is newer than this binary's {server_version}; "
            "refusing to start (the data dir was not modified)")
