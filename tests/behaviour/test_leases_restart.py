"""Leases survive a restart with their remaining TTL (kvetch persists lease checkpoints; etcd 3.5
without --experimental-enable-lease-checkpoint-persist resets leases to their full TTL)."""

from __future__ import annotations

import re
import time

import pytest
from e2e_support.etcdctl import run_etcdctl
from e2e_support.polling import wait_until


def remaining_ttl(srv, lease_hex: str) -> int:
    out = run_etcdctl("3.5", "lease", "timetolive", lease_hex, server=srv, check=True).stdout
    m = re.search(r"remaining\((-?\d+)s\)", out)
    assert m, out
    return int(m.group(1))


@pytest.mark.requires_flavour("kvetch")
def test_remaining_ttl_survives_graceful_restart(server_factory, flavour: str) -> None:
    srv = server_factory(flavour)
    out = run_etcdctl("3.5", "lease", "grant", "120", server=srv, check=True).stdout
    lease_hex = out.split()[1]
    run_etcdctl("3.5", "put", "held", "v", "--lease", lease_hex, server=srv, check=True)
    granted_at = time.monotonic()
    wait_until(lambda: remaining_ttl(srv, lease_hex) <= 117, timeout=30, what="lease TTL to run down")
    srv.stop()
    srv.start()
    elapsed = time.monotonic() - granted_at
    ttl = remaining_ttl(srv, lease_hex)
    assert 0 < ttl <= 120 - int(elapsed) + 1, (ttl, elapsed)
    assert run_etcdctl("3.5", "get", "held", server=srv, check=True).stdout == "held\nv\n"


def test_expired_lease_deletes_its_keys(server_factory, flavour: str) -> None:
    srv = server_factory(flavour)
    lease_hex = run_etcdctl("3.5", "lease", "grant", "2", server=srv, check=True).stdout.split()[1]
    run_etcdctl("3.5", "put", "a", "1", "--lease", lease_hex, server=srv, check=True)
    run_etcdctl("3.5", "put", "b", "2", "--lease", lease_hex, server=srv, check=True)
    before = run_etcdctl("3.5", "get", "a", "-w", "json", server=srv, check=True).json()["header"]["revision"]
    wait_until(lambda: run_etcdctl("3.5", "get", "", "--prefix", "--keys-only",
                                   server=srv, check=True).stdout.strip() == "", timeout=20,
               what="leased keys to expire")
    after = run_etcdctl("3.5", "get", "a", "-w", "json", server=srv, check=True).json()["header"]["revision"]
    assert after == before + 1, "revoke deletes every attached key in one revision"
