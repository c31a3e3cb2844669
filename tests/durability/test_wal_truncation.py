"""A torn WAL tail (crash mid-write) must be repaired on start.

The test needs etcd's WAL layout, ``<data-dir>/member/wal/*.wal``, which kvetch
keeps. It is marked ``requires_flavour("kvetch")`` as the brief asks for
kvetch's repair; see KVETCH_E2E_WAL_FLAVOURS to run it on etcd as well.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from e2e_support.grpcapi import pb, stubs

WAL_FLAVOURS = tuple(os.environ.get("KVETCH_E2E_WAL_FLAVOURS", "kvetch").split(","))


def newest_wal(data_dir: Path) -> Path:
    wals = sorted((data_dir / "member" / "wal").glob("*.wal"))
    assert wals, f"no WAL segments under {data_dir / 'member' / 'wal'}"
    return wals[-1]


def tear_tail(path: Path, cut: int) -> int:
    """Cut ``cut`` bytes off the last record (ignoring a zero-filled preallocated tail)."""
    data = path.read_bytes()
    logical_end = len(data.rstrip(b"\0"))
    assert logical_end > cut
    with path.open("r+b") as f:
        f.truncate(logical_end - cut)
    return logical_end - cut


@pytest.mark.requires_flavour(*WAL_FLAVOURS)
@pytest.mark.parametrize("cut", [1, 7, 20])
def test_truncated_wal_tail_is_repaired(server, cut: int) -> None:
    st = stubs(server.channel())
    for i in range(50):
        st.kv.Put(pb.PutRequest(key=b"early/%03d" % i, value=b"v%d" % i), timeout=10)
    # a last batch whose final record will be torn
    for i in range(5):
        st.kv.Put(pb.PutRequest(key=b"late/%d" % i, value=b"x" * 100), timeout=10)
    server.kill(signal.SIGKILL)
    tear_tail(newest_wal(server.data_dir), cut)
    server.start()
    st = stubs(server.channel())
    early = st.kv.Range(pb.RangeRequest(key=b"early/", range_end=b"early0"), timeout=10)
    assert [kv.key for kv in early.kvs] == [b"early/%03d" % i for i in range(50)]
    late = st.kv.Range(pb.RangeRequest(key=b"late/", range_end=b"late0"), timeout=10)
    # at most the last record may be lost; everything before it survives
    assert [kv.key for kv in late.kvs] in ([b"late/%d" % i for i in range(5)], [b"late/%d" % i for i in range(4)])
    # and it serves writes again, at the next revision
    put = st.kv.Put(pb.PutRequest(key=b"after", value=b"1"), timeout=10)
    assert put.header.revision == late.header.revision + 1
