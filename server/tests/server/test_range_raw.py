"""The pre-encoded Range reply (stored KeyValue bytes spliced into a RangeResponse) decodes to
exactly what the regular path builds, for every request shape it is used for."""

from __future__ import annotations

from pathlib import Path

import pytest
from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.server import kv_apply
from kvetch.storage.backend import Backend
from kvetch.storage.mvcc import KVStore


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    backend = Backend.open_data_dir(tmp_path)
    st = KVStore(backend)
    for i in range(300):
        st.put(b"k%03d" % i, b"v" * (i % 50), 0)
    st.delete_range(b"k010", None)
    st.put(b"x" * 600, b"long key", 0)
    # newer revisions of some keys (reads at an older revision look back), a value whose
    # length needs a 3-byte varint, and a long key inside a range of short ones
    for i in range(20, 40):
        st.put(b"k%03d" % i, b"new" * i, 0)
    st.put(b"k150", b"b" * 20_000, 0)
    st.put(b"m" + b"y" * 600, b"long key in m", 0)
    yield st
    st.close()
    backend.close()


REQUESTS = [
    rpc_pb2.RangeRequest(key=b"k", range_end=b"l"),
    rpc_pb2.RangeRequest(key=b"k", range_end=b"l", limit=7),
    rpc_pb2.RangeRequest(key=b"k", range_end=b"l", limit=1000),
    rpc_pb2.RangeRequest(key=b"k005"),
    rpc_pb2.RangeRequest(key=b"k010"),
    rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", revision=50),
    rpc_pb2.RangeRequest(key=b"zz", range_end=b"\x00"),
    rpc_pb2.RangeRequest(key=b"x", range_end=b"\x00", sort_order=rpc_pb2.RangeRequest.ASCEND),
    rpc_pb2.RangeRequest(key=b"k", range_end=b"l", revision=305),
    rpc_pb2.RangeRequest(key=b"k", range_end=b"l", revision=310, limit=25),
    rpc_pb2.RangeRequest(key=b"k", range_end=b"n"),
    rpc_pb2.RangeRequest(key=b"l", range_end=b"n", limit=1),
]


@pytest.mark.parametrize("req", REQUESTS, ids=range(len(REQUESTS)))
def test_raw_reply_equals_regular_reply(store: KVStore, req: rpc_pb2.RangeRequest) -> None:
    assert kv_apply.raw_range_eligible(req)
    header = rpc_pb2.ResponseHeader(cluster_id=5, member_id=6, raft_term=2)
    with store.read() as reader:
        raw = kv_apply.apply_range_raw(reader, req, rpc_pb2.ResponseHeader(cluster_id=5, member_id=6, raft_term=2))
        regular = kv_apply.apply_range(reader, req)
    regular.header.MergeFrom(header)
    assert rpc_pb2.RangeResponse.FromString(raw) == regular


def test_filters_sorting_and_projections_take_the_regular_path() -> None:
    for req in (rpc_pb2.RangeRequest(key=b"a", keys_only=True), rpc_pb2.RangeRequest(key=b"a", count_only=True),
                rpc_pb2.RangeRequest(key=b"a", min_mod_revision=2),
                rpc_pb2.RangeRequest(key=b"a", sort_order=rpc_pb2.RangeRequest.DESCEND),
                rpc_pb2.RangeRequest(key=b"a", sort_target=rpc_pb2.RangeRequest.VALUE)):
        assert not kv_apply.raw_range_eligible(req)
