"""Member-to-member transport: Raft messages over gRPC on the peer URLs.

Each member serves ``/kvetch.peer.Raft/Stream`` on its ``--listen-peer-urls``:
a long-lived client stream per sending peer (etcd keeps long-lived streams
between members too). Each stream message is a batch of raftpb ``Message``s,
each prefixed by its length (4 bytes, big endian). The stream's metadata
carries the sender's cluster ID, member ID and server version; a receiver
rejects a stream from another cluster (``FAILED_PRECONDITION``) so that two
clusters sharing ports can never mix logs, and refuses incompatible versions.
It accepts a stream by answering with initial metadata carrying
``kvetch-stream-accepted``. The unary ``/kvetch.peer.Raft/Send`` (one batch
per call) is still served, and used to send to peers that do not know
``Stream`` (kvetch 0.1.0): a mixed-version cluster keeps talking.

Sending never blocks Raft: messages go into a per-peer queue drained by one
task per peer, which batches whatever has accumulated into one stream write
(order is kept per peer). Snapshots (MsgSnap carrying a whole backend) take a
separate path, ``/kvetch.peer.Raft/Snapshot``: a client stream of 1 MiB
chunks, so they never hold up heartbeats and appends. A failed write reports
the peer unreachable to Raft, drops the stream and backs off exponentially; the
gRPC channel reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

import grpc
from grpc import aio

from kvetch.obs.metrics import METRICS
from kvetch.raft import Message
from kvetch.raft.codec import decode_message, encode_message
from kvetch.raft.types import MSG_SNAP

#: Test-only failpoint: a file listing peer member IDs (hex, one per line) to cut off, both ways.
PARTITION_ENV = "KVETCH_FAILPOINT_PARTITION_FILE"
SEND_METHOD = "/kvetch.peer.Raft/Send"
STREAM_METHOD = "/kvetch.peer.Raft/Stream"
STREAM_ACCEPTED = "kvetch-stream-accepted"  # initial-metadata key of a receiver taking the stream
SNAPSHOT_METHOD = "/kvetch.peer.Raft/Snapshot"
SNAPSHOT_CHUNK = 1 << 20
SNAPSHOT_TIMEOUT = 300.0
MEMBERS_METHOD = "/kvetch.peer.Raft/Members"
_LEN = struct.Struct(">I")
MAX_BATCH_BYTES = 4 << 20
SEND_TIMEOUT = 5.0


def _identity(b: bytes) -> bytes:
    return b


def encode_batch(msgs: Iterable[Message]) -> bytes:
    parts = []
    for m in msgs:
        data = encode_message(m)
        parts.append(_LEN.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_batch(blob: bytes) -> list[Message]:
    out = []
    pos = 0
    view = memoryview(blob)
    while pos < len(blob):
        (n,) = _LEN.unpack_from(blob, pos)
        pos += 4
        out.append(decode_message(bytes(view[pos:pos + n])))
        pos += n
    return out


def grpc_target(url: str) -> str:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    return f"{host}:{parsed.port or 2380}"


class _Peer:
    def __init__(self, transport: PeerTransport, member_id: int, urls: list[str]) -> None:
        self.transport = transport
        self.id = member_id
        self.urls = list(urls)
        self.queue: list[Message] = []
        self.wake = asyncio.Event()
        self.channel: aio.Channel | None = None
        self.stream: Any = None  # the open StreamUnaryCall, once the peer accepted it
        self.unary_only = False  # the peer predates Stream: one Send call per batch
        self.task: asyncio.Task[None] | None = None
        self.active = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-{self.id:x}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self._drop_stream()
        if self.channel is not None:
            await self.channel.close()

    def reset(self, urls: list[str]) -> None:
        """New peer URLs: reconnect (and find out again whether the peer streams)."""
        self.urls = list(urls)
        self._drop_stream()
        self.unary_only = False
        if self.channel is not None:
            asyncio.get_running_loop().create_task(self.channel.close())
            self.channel = None

    def _channel(self) -> aio.Channel:
        if self.channel is None:
            self.channel = aio.insecure_channel(grpc_target(self.urls[0]), options=[
                ("grpc.max_send_message_length", 64 << 20),
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2000),
            ])
        return self.channel

    def _drop_stream(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
            self.stream = None

    async def _open_stream(self) -> Any:
        """A stream the peer has accepted, or None if the peer does not serve Stream."""
        call = self._channel().stream_unary(STREAM_METHOD, request_serializer=_identity,
                                            response_deserializer=_identity)(metadata=self.transport.metadata)
        try:
            # the receiver accepts a stream by sending its marker in the initial metadata;
            # a refusal or an unknown method ends the call instead
            md = await asyncio.wait_for(call.initial_metadata(), SEND_TIMEOUT)
            if STREAM_ACCEPTED not in dict(md or ()):
                code = await asyncio.wait_for(call.code(), SEND_TIMEOUT)
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    self.unary_only = True
                    self.transport.log.info("peer does not stream Raft messages; sending one call per batch",
                                            **{"peer-id": f"{self.id:x}"})
                    return None
                await call  # raises the receiver's refusal (another cluster, version, partition)
                raise grpc.aio.UsageError("peer closed the message stream")
        except BaseException:
            call.cancel()
            raise
        return call

    async def _deliver(self, blob: bytes) -> None:
        if not self.unary_only and self.stream is None:
            self.stream = await self._open_stream()
        if self.stream is not None:
            async with asyncio.timeout(SEND_TIMEOUT):  # a timer, not a task per write
                await self.stream.write(blob)
            return
        call = self._channel().unary_unary(SEND_METHOD, request_serializer=_identity,
                                           response_deserializer=_identity)
        await call(blob, timeout=SEND_TIMEOUT, metadata=self.transport.metadata)

    async def _run(self) -> None:
        backoff = 0.05
        t = self.transport
        label = f"{self.id:x}"
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                # let the Ready loop finish this turn: what it still queues goes in the same write
                await asyncio.sleep(0)
            batch: list[Message] = []
            size = 0
            while self.queue and size < MAX_BATCH_BYTES:
                m = self.queue.pop(0)
                batch.append(m)
                size += 64 + sum(len(e.data) for e in m.entries)
            blob = encode_batch(batch)
            try:
                await self._deliver(blob)
                METRICS.peer_sent_bytes.labels(label).inc(len(blob))
                backoff = 0.05
                if not self.active:
                    self.active = True
                    t.log.info("peer became active", **{"peer-id": label})
            except (TimeoutError, grpc.RpcError, grpc.aio.UsageError, OSError, asyncio.InvalidStateError) as exc:
                self._drop_stream()
                METRICS.peer_sent_failures.labels(label).inc()
                if self.active:
                    self.active = False
                    t.log.warn("peer became inactive (message send to peer failed)",
                               **{"peer-id": label, "error": _describe(exc)})
                t.on_unreachable(self.id)
                # Raft retransmits what matters; drop the rest of the backlog to stay bounded.
                self.queue.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        return f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
    return repr(exc)


class PeerTransport:
    """Sends Raft messages to peers and hands received ones to ``on_messages``."""

    def __init__(self, *, member_id: int, cluster_id: int, version: str,
                 on_messages: Callable[[list[Message]], None],
                 on_unreachable: Callable[[int], None],
                 on_snapshot_status: Callable[[int, bool], None], log: Any,
                 members_json: Callable[[], bytes] | None = None,
                 prepare_snapshot: Callable[[Message], Message] | None = None,
                 version_allowed: Callable[[str], bool] | None = None) -> None:
        self.member_id = member_id
        self.cluster_id = cluster_id
        self.version = version
        self.on_messages = on_messages
        self.on_unreachable = on_unreachable
        self.on_snapshot_status = on_snapshot_status
        self.log = log
        self.members_json = members_json
        self.prepare_snapshot = prepare_snapshot
        self.version_allowed = version_allowed
        self.peers: dict[int, _Peer] = {}
        self.server: aio.Server | None = None
        self.metadata = (("kvetch-cluster-id", f"{cluster_id:x}"), ("kvetch-from", f"{member_id:x}"),
                         ("kvetch-version", version))
        self.blocked: set[str] = set()
        #: server version of each peer (hex member ID), from the metadata of its messages
        self.peer_versions: dict[str, str] = {}
        self._partition_file = os.environ.get(PARTITION_ENV)
        self._partition_task: asyncio.Task[None] | None = None
        self._inbound: set[asyncio.Task[Any]] = set()  # handlers of the peers' open streams
        self._closing = False

    # --- peers -----------------------------------------------------------------
    def set_peer(self, member_id: int, urls: list[str]) -> None:
        if member_id == self.member_id:
            return
        peer = self.peers.get(member_id)
        if peer is not None:
            if peer.urls != list(urls):
                peer.reset(urls)
            return
        peer = _Peer(self, member_id, urls)
        self.peers[member_id] = peer
        with contextlib.suppress(RuntimeError):
            peer.start()

    async def remove_peer(self, member_id: int) -> None:
        peer = self.peers.pop(member_id, None)
        if peer is not None:
            await peer.stop()

    def send(self, msgs: list[Message]) -> None:
        for m in msgs:
            peer = self.peers.get(m.to)
            if peer is None:
                continue
            if self.blocked and f"{m.to:x}" in self.blocked:
                continue
            if m.type == MSG_SNAP:
                if self.prepare_snapshot is not None:
                    m = self.prepare_snapshot(m)
                # Snapshots take their own path: a stream of chunks, so a large backend never
                # delays (or is delayed by) the heartbeats and appends of the message stream.
                asyncio.get_running_loop().create_task(self._send_snapshot(peer, m))
                continue
            peer.queue.append(m)
            peer.wake.set()

    async def _send_snapshot(self, peer: _Peer, m: Message) -> None:
        import dataclasses

        data = m.snapshot.data if m.snapshot is not None else b""
        head = encode_message(dataclasses.replace(
            m, snapshot=dataclasses.replace(m.snapshot, data=b"") if m.snapshot is not None else None))

        def chunks() -> Any:
            yield _LEN.pack(len(head)) + head
            for off in range(0, len(data), SNAPSHOT_CHUNK):
                yield data[off:off + SNAPSHOT_CHUNK]

        ok = False
        try:
            call = peer._channel().stream_unary(SNAPSHOT_METHOD, request_serializer=_identity,
                                             response_deserializer=_identity)
            await call(chunks(), timeout=SNAPSHOT_TIMEOUT, metadata=self.metadata)
            METRICS.peer_sent_bytes.labels(f"{peer.id:x}").inc(len(head) + len(data))
            ok = True
        except (TimeoutError, grpc.RpcError, OSError) as exc:
            METRICS.peer_sent_failures.labels(f"{peer.id:x}").inc()
            self.log.warn("failed to send database snapshot", **{"to": f"{peer.id:x}", "error": _describe(exc)})
        finally:
            self.on_snapshot_status(peer.id, ok)

    async def _receive_snapshot(self, chunks: Any, context: aio.ServicerContext) -> bytes:
        """The receiving end of the snapshot path: reassemble, then hand to Raft like any message."""
        import dataclasses

        md = dict(context.invocation_metadata() or ())
        if md.get("kvetch-cluster-id", "") != f"{self.cluster_id:x}":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "cluster ID mismatch")
        sender = md.get("kvetch-from", "?")
        if self.blocked and sender in self.blocked:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "partitioned (test failpoint)")
        await self._check_version(md, context)
        head: Message | None = None
        parts: list[bytes] = []
        async for chunk in chunks:
            if head is None:
                (n,) = _LEN.unpack_from(chunk, 0)
                head = decode_message(chunk[4:4 + n])
                continue
            parts.append(chunk)
        if head is None or head.snapshot is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty snapshot stream")
        assert head is not None and head.snapshot is not None
        data = b"".join(parts)
        METRICS.peer_received_bytes.labels(sender).inc(len(data))
        self.on_messages([dataclasses.replace(head, snapshot=dataclasses.replace(head.snapshot, data=data))])
        return b""

    def is_active(self, member_id: int) -> bool:
        peer = self.peers.get(member_id)
        return peer is not None and peer.active

    # --- serving ---------------------------------------------------------------
    async def start(self, listen: list[tuple[str, int]]) -> None:
        self.server = aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                          ("grpc.so_reuseport", 0)])
        handler = grpc.unary_unary_rpc_method_handler(
            self._receive, request_deserializer=_identity, response_serializer=_identity)
        stream = grpc.stream_unary_rpc_method_handler(
            self._receive_stream, request_deserializer=_identity, response_serializer=_identity)
        members = grpc.unary_unary_rpc_method_handler(
            self._members, request_deserializer=_identity, response_serializer=_identity)
        snapshot = grpc.stream_unary_rpc_method_handler(
            self._receive_snapshot, request_deserializer=_identity, response_serializer=_identity)
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(
                "kvetch.peer.Raft",
                {"Send": handler, "Stream": stream, "Members": members, "Snapshot": snapshot})])
        for host, port in listen:
            await self._bind(f"{host}:{port}")
        await self.server.start()
        for peer in self.peers.values():
            if peer.task is None:
                peer.start()
        if self._partition_file:
            self.log.warn("test failpoint enabled: peer partition file", path=self._partition_file)
            self._partition_task = asyncio.get_running_loop().create_task(self._watch_partition_file())

    async def _bind(self, address: str, attempts: int = 50) -> None:
        """Bind the peer port, retrying while a previous process's connections still hold it."""
        assert self.server is not None
        for attempt in range(attempts):
            try:
                if self.server.add_insecure_port(address):
                    return
            except RuntimeError:
                pass
            if attempt == 0:
                self.log.warn("peer address in use; retrying", address=address)
            await asyncio.sleep(0.1)
        raise SystemExit(f"kvetch: cannot listen for peers on {address}: address already in use")

    async def _watch_partition_file(self) -> None:
        """Failpoint for fault tests only: drop traffic with the peers the file names."""
        assert self._partition_file is not None
        while True:
            try:
                with open(self._partition_file, encoding="utf-8") as fh:
                    self.blocked = {line.strip().lower() for line in fh if line.strip()}
            except FileNotFoundError:
                self.blocked = set()
            await asyncio.sleep(0.05)

    async def _admit(self, context: aio.ServicerContext) -> str:
        """Check a sender's cluster ID, partition failpoint and version; its hex member ID."""
        md = dict(context.invocation_metadata() or ())
        cid = md.get("kvetch-cluster-id", "")
        if cid != f"{self.cluster_id:x}":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"cluster ID mismatch: local={self.cluster_id:x} remote={cid}")
        sender = md.get("kvetch-from", "?")
        if self.blocked and sender in self.blocked:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "partitioned (test failpoint)")
        await self._check_version(md, context)
        if "kvetch-version" in md:
            self.peer_versions[sender] = md["kvetch-version"]
        return sender

    async def _receive(self, blob: bytes, context: aio.ServicerContext) -> bytes:
        """One batch per call (the Send method; what kvetch 0.1.0 members send)."""
        sender = await self._admit(context)
        METRICS.peer_received_bytes.labels(sender).inc(len(blob))
        self.on_messages(decode_batch(blob))
        return b""

    async def _receive_stream(self, blobs: Any, context: aio.ServicerContext) -> bytes:
        """A sender's long-lived stream of batches; accepted by sending initial metadata."""
        sender = await self._admit(context)
        await context.send_initial_metadata(((STREAM_ACCEPTED, "1"),))
        received = METRICS.peer_received_bytes.labels(sender)
        task = asyncio.current_task()
        assert task is not None
        self._inbound.add(task)
        try:
            async for blob in blobs:
                if self.blocked and sender in self.blocked:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "partitioned (test failpoint)")
                received.inc(len(blob))
                self.on_messages(decode_batch(blob))
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # stop() ends the stream while the server still runs: the call closes cleanly
            # instead of being force-cancelled (and logged as an error) by the server's stop
        finally:
            self._inbound.discard(task)
        return b""

    async def _check_version(self, md: dict[str, str], context: aio.ServicerContext) -> None:
        """Refuse a peer whose server version cannot be part of this cluster (etcd's rafthttp check)."""
        remote = md.get("kvetch-version", "")
        if self.version_allowed is not None and not self.version_allowed(remote):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"incompatible server version: local={self.version} remote={remote or 'unknown'}")

    async def _members(self, _blob: bytes, context: aio.ServicerContext) -> bytes:
        """The cluster ID and member records, for a member joining with --initial-cluster-state existing."""
        if self.members_json is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "membership not available")
        return self.members_json()  # type: ignore[misc]

    async def stop(self) -> None:
        if self._partition_task is not None:
            self._partition_task.cancel()
        for peer in list(self.peers.values()):
            await peer.stop()
        # Peers' streams never end on their own: end them before the server stops.
        self._closing = True
        inbound = list(self._inbound)
        for task in inbound:
            task.cancel()
        if inbound:
            await asyncio.wait(inbound, timeout=1.0)
        if self.server is not None:
            await self.server.stop(0.5)


def fetch_members(peer_urls: list[str], timeout: float = 5.0) -> dict[str, Any]:
    """Ask existing members (by peer URL) for the cluster ID and member records (blocking)."""
    import json

    last: Exception | None = None
    for url in peer_urls:
        try:
            with grpc.insecure_channel(grpc_target(url)) as ch:
                call = ch.unary_unary(MEMBERS_METHOD, request_serializer=_identity,
                                      response_deserializer=_identity)
                result: dict[str, Any] = json.loads(call(b"", timeout=timeout))
                return result
        except grpc.RpcError as exc:
            last = exc
    raise RuntimeError(f"could not fetch cluster membership from {peer_urls}: {last}")
