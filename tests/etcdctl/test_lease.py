"""etcdctl lease grant / keep-alive --once / timetolive --keys / list / revoke."""

from __future__ import annotations

import base64
import re


def grant(ctl, ttl: int = 60) -> str:
    out = ctl.ok("lease", "grant", str(ttl)).stdout
    match = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n", out)
    assert match, out
    assert int(match.group(2)) == ttl
    return match.group(1)


def test_lease_lifecycle(ctl) -> None:
    lease = grant(ctl)
    ctl.ok("put", "lk", "v", f"--lease={lease}")
    ctl.ok("put", "lk2", "v", f"--lease={lease}")
    assert ctl.ok("lease", "keep-alive", "--once", lease).stdout == f"lease {lease} keepalived with TTL(60)\n"
    out = ctl.ok("lease", "timetolive", lease, "--keys").stdout
    match = re.fullmatch(
        rf"lease {lease} granted with TTL\(60s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)\n", out)
    assert match, out
    assert 55 <= int(match.group(1)) <= 60
    # etcd lists attached keys in Go map order: any order
    assert sorted(match.group(2).split()) == ["lk", "lk2"]
    info = ctl.ok("lease", "timetolive", lease, "--keys", "-w", "json").json()
    assert info["id"] == int(lease, 16)
    assert info["granted-ttl"] == 60
    assert 55 <= info["ttl"] <= 60
    assert sorted(info["keys"]) == [base64.b64encode(b"lk").decode(), base64.b64encode(b"lk2").decode()]
    leases = ctl.ok("lease", "list").lines
    assert leases == ["found 1 leases", lease]
    assert ctl.ok("get", "lk", "-w", "json").json()["kvs"][0]["lease"] == int(lease, 16)
    assert ctl.ok("lease", "revoke", lease).stdout == f"lease {lease} revoked\n"
    assert ctl.ok("get", "lk", "--prefix").stdout == ""
    assert ctl.ok("lease", "list").lines == ["found 0 leases"]
    assert ctl.ok("lease", "timetolive", lease).stdout == f"lease {lease} already expired\n"
    res = ctl("lease", "revoke", lease)
    assert res.returncode == 1
    assert res.error == "failed to revoke lease (etcdserver: requested lease not found)"


def test_lease_grant_json_and_ttl_bounds(ctl) -> None:
    out = ctl.ok("lease", "grant", "100", "-w", "json").json()
    assert out["TTL"] == 100
    assert out["ID"] > 0
    assert out["Error"] == ""
    # a TTL below the minimum is raised to it (minimum = ceil(1.5 * election timeout) = 2s by default)
    small = ctl.ok("lease", "grant", "0").stdout
    assert re.fullmatch(r"lease [0-9a-f]{16} granted with TTL\(2s\)\n", small), small
    res = ctl("lease", "grant", "99999999999")
    assert res.returncode == 1
    assert res.error == "failed to grant lease (etcdserver: too large lease TTL)"


def test_lease_unknown_ids(ctl) -> None:
    assert ctl.ok("lease", "timetolive", "123").stdout == "lease 0000000000000123 already expired\n"
    res = ctl("lease", "keep-alive", "--once", "123")
    assert res.returncode != 0
    assert res.error == "etcdserver: requested lease not found"


def test_lease_expiry_deletes_keys(ctl) -> None:
    lease = grant(ctl, 2)
    ctl.ok("put", "short", "v", f"--lease={lease}")
    watch = ctl.bg("watch", "short", "--rev=1")
    # the key's PUT, then its DELETE when the lease expires (after ~2s)
    assert watch.read_lines(6, timeout=15) == ["PUT", "short", "v", "DELETE", "short", ""]
    assert ctl.ok("lease", "timetolive", lease).stdout == f"lease {lease} already expired\n"
