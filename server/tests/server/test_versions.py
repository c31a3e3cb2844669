"""Cluster version decisions and start-up refusals (etcd's decideClusterVersion / MustDetectDowngrade)."""

from __future__ import annotations

import pytest
from kvetch.server import versions


def test_first_decision_is_the_lowest_member() -> None:
    assert versions.decide("", ["0.2.0", "0.1.3", "0.2.1"], None) == "0.1"


def test_raised_only_when_every_member_is_newer() -> None:
    assert versions.decide("0.1", ["0.2.0", "0.1.9"], None) is None
    assert versions.decide("0.1", ["0.2.0", "0.2.4"], None) == "0.2"


def test_never_lowered_without_downgrade() -> None:
    assert versions.decide("0.2", ["0.1.0", "0.2.0"], None) is None


def test_unknown_member_freezes_the_decision() -> None:
    assert versions.decide("0.1", ["0.2.0", None], None) is None
    assert versions.decide("", [None], None) is None


def test_enabled_downgrade_pins_the_target() -> None:
    assert versions.decide("0.2", ["0.2.0", "0.2.0"], "0.1.0") == "0.1"
    assert versions.decide("0.1", ["0.2.0"], "0.1") is None


def test_older_binary_refuses_newer_cluster_or_storage() -> None:
    with pytest.raises(versions.VersionRefused, match="server version is lower than determined cluster version"):
        versions.check_can_start("0.3", "0.3", None, server_version="0.2")
    with pytest.raises(versions.VersionRefused, match=r"storage version 0\.3 is newer"):
        versions.check_can_start("0.2", "0.3", None, server_version="0.2")
    # allowed when a downgrade to this binary's version is enabled
    versions.check_can_start("0.3", "0.3", "0.2", server_version="0.2")
    versions.check_can_start("0.2", "0.2", None, server_version="0.3")


def test_peer_version_gate() -> None:
    """Peers of another major, or older than the cluster version without a downgrade, are refused."""
    from types import SimpleNamespace

    from kvetch.server.cluster import Cluster

    def allowed(remote: str, cluster: str, downgrade: dict[str, object]) -> bool:
        fake = SimpleNamespace(s=SimpleNamespace(cluster_version=cluster, downgrade=downgrade))
        return Cluster._version_allowed(fake, remote)  # type: ignore[arg-type]

    assert allowed("0.2.0", "0.2", {})
    assert allowed("0.3.0", "0.2", {})  # newer members join during an upgrade
    assert not allowed("0.1.0", "0.2", {})
    assert allowed("0.1.0", "0.2", {"enabled": True, "target": "0.1.0"})
    assert not allowed("1.0.0", "", {})
    assert not allowed("garbage", "0.2", {})
    assert allowed("0.1.0", "", {})  # before the first decision
