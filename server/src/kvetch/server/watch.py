"""Watches: the hub that routes applied events to watchers, and the per-stream state.

A watcher is *synced* when it has seen everything up to the store's current
revision; the apply loop hands every new revision's events straight to synced
watchers. A watcher that starts in the past, or whose stream cannot take more
responses (a slow client), is *unsynced*: a background task catches it up by
reading history from the store in bounded chunks, then moves it back to the
synced set. A slow watcher therefore never blocks writes or other watchers; it
only falls behind and catches up from storage.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.mvccpb import kv_pb2
from kvetch.server import errors

PUT = kv_pb2.Event.PUT
DELETE = kv_pb2.Event.DELETE
NOPUT = rpc_pb2.WatchCreateRequest.NOPUT
NODELETE = rpc_pb2.WatchCreateRequest.NODELETE

#: Responses a stream may buffer before its watchers are treated as slow.
STREAM_BUFFER = 1024
#: Changes scanned per catch-up step of one unsynced watcher.
SYNC_BATCH_CHANGES = 2000
DUPLICATE_WATCH_ID = "mvcc: duplicate watch ID provided on the WatchStream"


class EventSource(Protocol):
    """What the hub needs from the store."""

    @property
    def rev(self) -> int: ...

    @property
    def compact_rev(self) -> int: ...

    def events_chunk(self, key: bytes, end: bytes | None, start_rev: int, end_rev: int | None = None, *,
                     max_entries: int = 10000, prev_kv: bool = False) -> tuple[list[Any], int]: ...


def key_in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    """etcd's watch key match: end None = one key, b'' = every key >= start, else [start, end)."""
    if end is None:
        return key == start
    if end == b"":
        return key >= start
    return start <= key < end


@dataclass(eq=False)
class Watcher:
    id: int
    stream: WatchStream
    key: bytes
    end: bytes | None
    next_rev: int  # first revision not yet delivered
    no_put: bool = False
    no_delete: bool = False
    prev_kv: bool = False
    progress_notify: bool = False
    fragment: bool = False
    synced: bool = False
    had_events: bool = False  # since the last progress tick

    def wants(self, event: Any) -> bool:
        if event.type == PUT and self.no_put:
            return False
        if event.type == DELETE and self.no_delete:
            return False
        return key_in_range(event.kv.key, self.key, self.end)


class WatchHub:
    """All watchers of one member."""

    def __init__(self, source: EventSource, header: Callable[[int], rpc_pb2.ResponseHeader],
                 max_request_bytes: int) -> None:
        self.source = source
        self.header = header
        self.max_request_bytes = max_request_bytes
        self.synced_by_key: dict[bytes, set[Watcher]] = collections.defaultdict(set)
        self.synced_ranges: set[Watcher] = set()
        self.unsynced: set[Watcher] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.slow_total = 0

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sync_loop(), name="watch-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def watcher_count(self) -> int:
        return sum(len(s) for s in self.synced_by_key.values()) + len(self.synced_ranges) + len(self.unsynced)

    # --- membership --------------------------------------------------------------
    def add(self, w: Watcher) -> None:
        if w.next_rev > self.source.rev:
            self._make_synced(w)
        else:
            self.unsynced.add(w)
            self._wake.set()

    def remove(self, w: Watcher) -> None:
        self.unsynced.discard(w)
        if w.end is None:
            group = self.synced_by_key.get(w.key)
            if group is not None:
                group.discard(w)
                if not group:
                    del self.synced_by_key[w.key]
        else:
            self.synced_ranges.discard(w)

    def resync_all(self) -> None:
        """After the store was replaced (snapshot install): every watcher catches up from storage."""
        for w in list(self.synced_ranges) + [w for g in self.synced_by_key.values() for w in g]:
            self.remove(w)
            w.synced = False
            self.unsynced.add(w)
        self._wake.set()

    def _make_synced(self, w: Watcher) -> None:
        w.synced = True
        if w.end is None:
            self.synced_by_key[w.key].add(w)
        else:
            self.synced_ranges.add(w)

    def _make_unsynced(self, w: Watcher) -> None:
        self.remove(w)
        w.synced = False
        self.unsynced.add(w)
        self.slow_total += 1
        self._wake.set()

    # --- delivery from the apply loop -------------------------------------------
    def notify(self, rev: int, events: list[Any]) -> None:
        """Hand one revision's events to the synced watchers (called after apply)."""
        if not events:
            return
        targets: dict[Watcher, list[Any]] = {}
        if self.synced_by_key:
            for ev in events:
                group = self.synced_by_key.get(ev.kv.key)
                if group:
                    for w in group:
                        if w.wants(ev):
                            targets.setdefault(w, []).append(ev)
        for w in self.synced_ranges:
            for ev in events:
                if w.wants(ev):
                    targets.setdefault(w, []).append(ev)
        for w, evs in targets.items():
            if w.next_rev > rev:
                continue  # watching from a future revision
            if w.stream.deliver(w, rev, evs):
                w.next_rev = rev + 1
            else:
                self._make_unsynced(w)
        # synced watchers with nothing to see still advance
        # (next_rev only matters for unsynced catch-up, which starts from there)

    # --- catch-up ----------------------------------------------------------------
    async def _sync_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.unsynced:
                progressed = self._sync_once()
                # Yield to the loop so writers and streams run between chunks.
                await asyncio.sleep(0 if progressed else 0.01)

    def _sync_once(self) -> bool:
        """One bounded catch-up step for every unsynced watcher; True if anything moved."""
        progressed = False
        current = self.source.rev
        compact = self.source.compact_rev
        for w in list(self.unsynced):
            if w.stream.closed:
                self.unsynced.discard(w)
                continue
            if not w.stream.has_room():
                continue
            if w.next_rev < compact:
                self.unsynced.discard(w)
                w.stream.cancel_compacted(w, compact)
                progressed = True
                continue
            if w.next_rev > current:
                self.unsynced.discard(w)
                self._make_synced(w)
                w.synced = True
                progressed = True
                continue
            try:
                evs, nxt = self.source.events_chunk(w.key, w.end, w.next_rev, current,
                                                    max_entries=SYNC_BATCH_CHANGES, prev_kv=w.prev_kv)
            except errors.RPCError:
                self.unsynced.discard(w)
                w.stream.cancel_compacted(w, self.source.compact_rev)
                progressed = True
                continue
            evs = [e for e in evs if w.wants(e)]
            if evs and not w.stream.deliver(w, current, evs):
                continue
            w.next_rev = nxt
            progressed = True
            if nxt > current:
                self.unsynced.discard(w)
                self._make_synced(w)
        return progressed

    # --- progress ----------------------------------------------------------------
    def progress_tick(self) -> None:
        """Periodic progress notification for idle synced watchers that asked for it."""
        rev = self.source.rev
        for w in itertools.chain(self.synced_ranges, *self.synced_by_key.values()):
            if w.progress_notify and not w.had_events:
                w.stream.send_control(rpc_pb2.WatchResponse(header=self.header(rev), watch_id=w.id))
            w.had_events = False


@dataclass(eq=False)
class WatchStream:
    """One client Watch stream: its watchers and its bounded outgoing queue."""

    hub: WatchHub
    watchers: dict[int, Watcher] = field(default_factory=dict)
    queue: collections.deque[rpc_pb2.WatchResponse] = field(default_factory=collections.deque)
    closed: bool = False
    _next_id: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    # --- requests -----------------------------------------------------------------
    def handle(self, req: rpc_pb2.WatchRequest) -> None:
        which = req.WhichOneof("request_union")
        if which == "create_request":
            self._create(req.create_request)
        elif which == "cancel_request":
            self._cancel(req.cancel_request.watch_id)
        elif which == "progress_request":
            self.send_control(rpc_pb2.WatchResponse(header=self.hub.header(self.hub.source.rev), watch_id=-1))

    def _create(self, creq: rpc_pb2.WatchCreateRequest) -> None:
        key = creq.key or b"\x00"
        end: bytes | None = creq.range_end if creq.range_end else None
        if end == b"\x00":
            end = b""
        current = self.hub.source.rev
        start = creq.start_revision or current + 1
        wid = creq.watch_id
        if wid != 0 and wid in self.watchers:
            self.send_control(rpc_pb2.WatchResponse(
                header=self.hub.header(current), watch_id=-1, created=True, canceled=True,
                cancel_reason=DUPLICATE_WATCH_ID))
            return
        if wid == 0:
            while self._next_id in self.watchers:
                self._next_id += 1
            wid = self._next_id
            self._next_id += 1
        filters = set(creq.filters)
        w = Watcher(
            id=wid, stream=self, key=key, end=end, next_rev=start,
            no_put=NOPUT in filters, no_delete=NODELETE in filters,
            prev_kv=creq.prev_kv, progress_notify=creq.progress_notify, fragment=creq.fragment,
        )
        self.watchers[wid] = w
        # The "created" reply goes out before any event of this watcher.
        self.send_control(rpc_pb2.WatchResponse(header=self.hub.header(current), watch_id=wid, created=True))
        self.hub.add(w)

    def _cancel(self, wid: int) -> None:
        w = self.watchers.pop(wid, None)
        if w is None:
            return
        self.hub.remove(w)
        self.send_control(rpc_pb2.WatchResponse(
            header=self.hub.header(self.hub.source.rev), watch_id=wid, canceled=True))

    def close(self) -> None:
        self.closed = True
        for w in self.watchers.values():
            self.hub.remove(w)
        self.watchers.clear()
        self._ready.set()

    # --- outgoing -----------------------------------------------------------------
    def has_room(self) -> bool:
        return len(self.queue) < STREAM_BUFFER

    def send_control(self, resp: rpc_pb2.WatchResponse) -> None:
        """Control replies (created, canceled, progress) are never dropped."""
        if self.closed:
            return
        self.queue.append(resp)
        self._ready.set()

    def deliver(self, w: Watcher, rev: int, events: list[Any]) -> bool:
        """Queue an events response for ``w``; False when the stream is full (slow)."""
        if self.closed or w.id not in self.watchers:
            return True
        if not self.has_room():
            return False
        out = []
        for ev in events:
            # Events from the store carry prev_kv whenever the key existed before.
            if w.prev_kv:
                out.append(ev)
            elif ev.HasField("prev_kv"):
                stripped = kv_pb2.Event(type=ev.type)
                stripped.kv.CopyFrom(ev.kv)
                out.append(stripped)
            else:
                out.append(ev)
        resp = rpc_pb2.WatchResponse(header=self.hub.header(rev), watch_id=w.id, events=out)
        w.had_events = True
        if w.fragment:
            self.queue.extend(fragments(resp, self.hub.max_request_bytes))
        else:
            self.queue.append(resp)
        self._ready.set()
        return True

    def cancel_compacted(self, w: Watcher, compact_rev: int) -> None:
        self.watchers.pop(w.id, None)
        self.send_control(rpc_pb2.WatchResponse(
            header=self.hub.header(0), watch_id=w.id, compact_revision=compact_rev, canceled=True))

    async def responses(self) -> AsyncIterator[rpc_pb2.WatchResponse]:
        while True:
            while self.queue:
                yield self.queue.popleft()
                if self.hub.unsynced and len(self.queue) < STREAM_BUFFER // 2:
                    self.hub._wake.set()
            if self.closed:
                return
            self._ready.clear()
            await self._ready.wait()


def fragments(resp: rpc_pb2.WatchResponse, max_bytes: int) -> list[rpc_pb2.WatchResponse]:
    """Split a large events response into fragments as etcd does (fragment=true on all but the last)."""
    if resp.ByteSize() < max_bytes or len(resp.events) < 2:
        return [resp]
    out: list[rpc_pb2.WatchResponse] = []
    events = list(resp.events)
    idx = 0
    while idx < len(events):
        cur = rpc_pb2.WatchResponse(header=resp.header, watch_id=resp.watch_id, fragment=True)
        while idx < len(events):
            cur.events.append(events[idx])
            if len(cur.events) > 1 and cur.ByteSize() >= max_bytes:
                del cur.events[-1]
                break
            idx += 1
        if idx == len(events):
            cur.fragment = False
        out.append(cur)
    return out


async def serve_watch(hub: WatchHub, requests: AsyncIterator[rpc_pb2.WatchRequest]
                      ) -> AsyncIterator[rpc_pb2.WatchResponse]:
    """The Watch RPC body shared by gRPC and the JSON gateway."""
    stream = WatchStream(hub)

    async def pump() -> None:
        # A client that half-closes its side keeps receiving (etcd ends the
        # stream only when the RPC itself ends); a broken request side ends it.
        try:
            async for req in requests:
                stream.handle(req)
        except asyncio.CancelledError:
            raise
        except Exception:
            stream.close()

    task = asyncio.get_running_loop().create_task(pump())
    try:
        async for resp in stream.responses():
            yield resp
    finally:
        task.cancel()
        stream.close()
