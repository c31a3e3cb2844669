"""The peer transport between two members on loopback: Raft messages over the long-lived
Stream, the receiver's refusals (another cluster, an incompatible version), and the fallback
to one Send call per batch for a receiver that predates Stream (as kvetch 0.1.0 does; the
two-release cluster tests in tests/versions run the real 0.1.0)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc import aio
from kvetch.peer.transport import SEND_METHOD, PeerTransport, decode_batch
from kvetch.raft import Message
from kvetch.raft.types import MSG_HEARTBEAT


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, **_: Any) -> None:
        self.lines.append(msg)

    warn = info


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def _transport(member_id: int, cluster_id: int, got: list[Message], unreachable: list[int],
               version_allowed: Callable[[str], bool] | None = None) -> PeerTransport:
    return PeerTransport(member_id=member_id, cluster_id=cluster_id, version="0.2.0",
                         on_messages=got.extend, on_unreachable=unreachable.append,
                         on_snapshot_status=lambda *_: None, log=_Log(), version_allowed=version_allowed)


def _heartbeats(n: int) -> list[Message]:
    return [Message(type=MSG_HEARTBEAT, to=2, frm=1, term=3, commit=i) for i in range(n)]


async def _pair(receiver_cluster: int = 7, allowed: Callable[[str], bool] | None = None
                ) -> tuple[PeerTransport, PeerTransport, list[Message], list[int]]:
    got: list[Message] = []
    unreachable: list[int] = []
    port = _port()
    b = _transport(2, receiver_cluster, got, [], allowed)
    await b.start([("127.0.0.1", port)])
    a = _transport(1, 7, [], unreachable)
    a.set_peer(2, [f"http://127.0.0.1:{port}"])
    await a.start([("127.0.0.1", _port())])
    return a, b, got, unreachable


def test_messages_arrive_in_order_over_one_stream() -> None:
    async def go() -> None:
        a, b, got, unreachable = await _pair()
        try:
            sent = _heartbeats(300)
            for i in range(0, 300, 7):  # many small sends, as the Ready loop makes them
                a.send(sent[i:i + 7])
                await asyncio.sleep(0)
            await _until(lambda: len(got) == 300)
            assert [m.commit for m in got] == list(range(300))
            assert a.is_active(2) and not unreachable
            peer = a.peers[2]
            assert peer.stream is not None and not peer.unary_only
        finally:
            await a.stop()
            await b.stop()
    asyncio.run(go())


@pytest.mark.parametrize(("receiver_cluster", "allowed"), [
    (8, None),  # another cluster
    (7, lambda v: v.startswith("9.")),  # same cluster, but the receiver refuses version 0.2.0
], ids=["another-cluster", "incompatible-version"])
def test_receiver_refuses_the_stream(receiver_cluster: int, allowed: Callable[[str], bool] | None) -> None:
    async def go() -> None:
        a, b, got, unreachable = await _pair(receiver_cluster, allowed)
        try:
            a.send(_heartbeats(3))
            await _until(lambda: bool(unreachable))
            assert got == [] and not a.is_active(2)
        finally:
            await a.stop()
            await b.stop()
    asyncio.run(go())


def test_falls_back_to_one_call_per_batch_for_a_receiver_without_stream() -> None:
    async def go() -> None:
        got: list[Message] = []
        port = _port()

        async def send(blob: bytes, _ctx: aio.ServicerContext) -> bytes:
            got.extend(decode_batch(blob))
            return b""

        # a peer server that knows only Send, the method kvetch 0.1.0 serves
        old = aio.server()
        service, method = SEND_METHOD.strip("/").split("/")
        old.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, {
            method: grpc.unary_unary_rpc_method_handler(send, request_deserializer=bytes,
                                                        response_serializer=bytes)})])
        old.add_insecure_port(f"127.0.0.1:{port}")
        await old.start()
        unreachable: list[int] = []
        a = _transport(1, 7, [], unreachable)
        a.set_peer(2, [f"http://127.0.0.1:{port}"])
        await a.start([("127.0.0.1", _port())])
        try:
            a.send(_heartbeats(50))
            await _until(lambda: len(got) == 50)
            a.send(_heartbeats(5))
            await _until(lambda: len(got) == 55)
            assert [m.commit for m in got] == [*range(50), *range(5)]
            assert a.peers[2].unary_only and a.is_active(2)
        finally:
            await a.stop()
            await old.stop(0)
    asyncio.run(go())


def test_stopping_the_receiver_ends_open_streams_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    """Peers' streams never end on their own; stop() closes them with OK before the server
    stops, so gRPC does not force-cancel them (which it logs as an unhandled error)."""
    async def go() -> None:
        a, b, got, _ = await _pair()
        try:
            a.send(_heartbeats(5))
            await _until(lambda: len(got) == 5)
            stream = a.peers[2].stream
            assert stream is not None and len(b._inbound) == 1
            await b.stop()
            assert not b._inbound
            assert await asyncio.wait_for(stream.code(), 5) == grpc.StatusCode.OK
        finally:
            await a.stop()
    with caplog.at_level("ERROR"):
        asyncio.run(go())
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
