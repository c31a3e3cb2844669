"""SIGKILL under concurrent write load, restart on the same data dir, check what survived.

Every acknowledged write must be there with its value and revision; nothing
unacknowledged may be half-applied (a two-key txn is all or nothing); the
revision never goes back. Flavour-generic: real etcd passes it almost always,
which shows the test is fair; the rare run where etcd 3.5.1 loses an
acknowledged write is its known crash bug (etcd-io/etcd#13766: the consistent
index was not saved atomically with the data, fixed in 3.5.3), reported as an
expected failure of the etcd flavour. kvetch must pass every time.
"""

from __future__ import annotations

import signal

import pytest
from durability.load import LoadResult, WriteLoad
from e2e_support import wait_until
from e2e_support.grpcapi import pb, stubs


def read_all(server) -> dict[bytes, tuple[bytes, int]]:  # type: ignore[no-untyped-def]
    st = stubs(server.channel())
    resp = st.kv.Range(pb.RangeRequest(key=b"\0", range_end=b"\0"), timeout=10)
    return {kv.key: (kv.value, kv.mod_revision) for kv in resp.kvs}


def check(result: LoadResult, data: dict[bytes, tuple[bytes, int]], attempted: dict[bytes, bytes]) -> None:
    missing = [a.key for a in result.acked_puts if data.get(a.key) != (a.value, a.revision)]
    assert not missing, f"{len(missing)} acknowledged puts lost or changed, e.g. {missing[:5]}"
    for ack in result.acked_txns:
        for suffix in (b"a", b"b"):
            assert data.get(ack.key + suffix) == (ack.value, ack.revision), f"acknowledged txn {ack.key!r} lost"
    for prefix in result.attempted_txns:
        present = [prefix + s in data for s in (b"a", b"b")]
        assert present[0] == present[1], f"txn {prefix!r} half applied: {present}"
        if present[0]:
            va, ra = data[prefix + b"a"]
            assert (va, ra) == data[prefix + b"b"], f"txn {prefix!r} keys differ"
    for key, (value, _) in data.items():
        if key.startswith(b"w"):
            assert attempted.get(key) == value, f"unexpected key or value {key!r}={value!r}"


def test_sigkill_under_load_keeps_acknowledged_writes(server) -> None:
    rounds: list[LoadResult] = []
    last_revision = 0
    for round_no in range(2):
        load = WriteLoad(server.endpoint, workers=4, tag=str(round_no)).start()
        wait_until(lambda load=load: load.acked() >= 150, timeout=60, what="150 acknowledged writes")
        server.kill(signal.SIGKILL)
        result = load.wait_dead()
        rounds.append(result)
        assert result.errors, "the load should have seen the server die"
        server.start()
        data = read_all(server)
        attempted = {k: v for r in rounds for k, v in r.attempted_puts}
        try:
            for r in rounds:
                check(r, data, attempted)
        except AssertionError as exc:
            if server.flavour == "etcd":
                pytest.xfail(f"etcd 3.5.1 broke crash consistency after SIGKILL ({exc}); "
                             "etcd-io/etcd#13766, fixed in etcd 3.5.3")
            raise
        revision = stubs(server.channel()).kv.Range(pb.RangeRequest(key=b"x"), timeout=10).header.revision
        max_acked = max(a.revision for r in rounds for a in r.acked_puts + r.acked_txns)
        assert revision >= max_acked >= last_revision
        last_revision = revision
    # and it still takes writes
    st = stubs(server.channel())
    after = st.kv.Put(pb.PutRequest(key=b"after", value=b"1"), timeout=10)
    assert after.header.revision == last_revision + 1


def test_sigterm_is_clean(server) -> None:
    st = stubs(server.channel())
    for i in range(20):
        st.kv.Put(pb.PutRequest(key=b"k%d" % i, value=b"v"), timeout=10)
    hash_before = st.maintenance.HashKV(pb.HashKVRequest(), timeout=10)
    # etcd re-raises SIGTERM after its clean shutdown, so "killed by SIGTERM" is clean too
    assert server.stop() in (0, -signal.SIGTERM)
    server.start()
    st = stubs(server.channel())
    hash_after = st.maintenance.HashKV(pb.HashKVRequest(), timeout=10)
    assert (hash_after.hash, hash_after.header.revision) == (hash_before.hash, hash_before.header.revision)
