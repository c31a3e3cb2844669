"""A watcher whose client stops reading must not block writes or other watchers; when it
reads again it receives every event exactly once, in revision order (caught up from storage)."""

from __future__ import annotations

import queue
import threading
import time

import grpc
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

PUTS = 3000
VALUE = b"v" * 512


def open_watch(channel: grpc.Channel, key: bytes) -> tuple[object, queue.Queue[rpc_pb2.WatchRequest]]:
    requests: queue.Queue[rpc_pb2.WatchRequest] = queue.Queue()
    requests.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=key, range_end=key + b"\xff")))

    def gen():  # type: ignore[no-untyped-def]
        while True:
            yield requests.get()

    stream = rpc_pb2_grpc.WatchStub(channel).Watch(gen())
    return stream, requests


def collect_revisions(stream: object, count: int, timeout: float) -> list[int]:
    revs: list[int] = []
    deadline = time.monotonic() + timeout
    for resp in stream:  # type: ignore[attr-defined]
        revs.extend(ev.kv.mod_revision for ev in resp.events)
        if len(revs) >= count or time.monotonic() > deadline:
            break
    return revs


def test_slow_watcher_does_not_block(server_factory, flavour: str) -> None:
    srv = server_factory(flavour)
    slow_channel = grpc.insecure_channel(srv.endpoint)
    fast_channel = grpc.insecure_channel(srv.endpoint)
    try:
        slow, _ = open_watch(slow_channel, b"w/")
        first = next(slow)  # type: ignore[call-overload]
        assert first.created
        fast, _ = open_watch(fast_channel, b"w/")
        assert next(fast).created  # type: ignore[call-overload]

        fast_revs: list[int] = []
        reader = threading.Thread(target=lambda: fast_revs.extend(collect_revisions(fast, PUTS, 120)))
        reader.start()
        kv = rpc_pb2_grpc.KVStub(srv.channel())
        started = time.monotonic()
        first_rev = None
        for i in range(PUTS):
            resp = kv.Put(rpc_pb2.PutRequest(key=b"w/%05d" % i, value=VALUE), timeout=10)
            first_rev = first_rev or resp.header.revision
        writes_took = time.monotonic() - started
        reader.join(120)
        expected = list(range(first_rev, first_rev + PUTS))
        assert fast_revs == expected, "the reading watcher saw every revision in order"
        # the stalled watcher now reads everything, exactly once and in order
        assert collect_revisions(slow, PUTS, 120) == expected
        assert writes_took < 120
    finally:
        slow_channel.close()
        fast_channel.close()
