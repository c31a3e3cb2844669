"""The Watch API: many watches multiplexed on one bidirectional stream, resumed after failures.

One :class:`Watcher` per client owns one ``Watch`` stream. Creates are matched
to ``created`` responses in order (the server answers creates in the order it
got them). Each :class:`Watch` remembers the next revision it needs (one past
the last event or the creation revision); when the stream breaks it is
re-created on a fresh stream (possibly another endpoint) from that revision,
so no event is lost or repeated. A watch whose revision was compacted ends
with :class:`~kvetch.client.errors.CompactedError` carrying the compact revision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import grpc
import grpc.aio

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.mvccpb import kv_pb2

from . import errors
from .ops import KeyLike, key_range
from .transport import Transport

FILTERS = {"noput": 0, "nodelete": 1}
_END = object()


@dataclass
class WatchResponse:
    """One batch of events for one watch (fragments already merged)."""

    header: rpc_pb2.ResponseHeader
    events: list[kv_pb2.Event]
    watch_id: int = 0
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""

    @property
    def is_progress_notify(self) -> bool:
        return not self.events and not self.created and not self.canceled and self.compact_revision == 0


@dataclass
class Watch:
    """One watch; iterate it for :class:`WatchResponse` batches, or ``events()`` for events."""

    watcher: Watcher
    request: rpc_pb2.WatchCreateRequest
    watch_id: int = -1
    next_rev: int = 0
    created_revision: int = 0
    closed: bool = False
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    created_fut: asyncio.Future[None] | None = None
    _fragments: list[kv_pb2.Event] = field(default_factory=list)

    def __aiter__(self) -> AsyncIterator[WatchResponse]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[WatchResponse]:
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, WatchResponse)
            yield item

    async def events(self) -> AsyncIterator[kv_pb2.Event]:
        async for resp in self:
            for ev in resp.events:
                yield ev

    async def cancel(self) -> None:
        await self.watcher.cancel(self)

    # -- fed by the watcher ----------------------------------------------------
    def _finish(self, item: object = _END) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(item)
        if self.created_fut is not None and not self.created_fut.done():
            if isinstance(item, BaseException):
                self.created_fut.set_exception(item)
            else:
                self.created_fut.set_result(None)


class Watcher:
    """The watch stream of one client."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self._watches: dict[int, Watch] = {}
        self._pending: deque[Watch] = deque()
        self._waiting: list[Watch] = []  # to (re)create once a stream is up
        self._call: grpc.aio.StreamStreamCall | None = None
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._stream_up = asyncio.Event()
        self._closed = False
        #: URL of the endpoint the stream is currently on ("" while down)
        self.endpoint = ""

    async def watch(
        self,
        key: KeyLike,
        range_end: KeyLike | None = None,
        *,
        prefix: bool = False,
        from_key: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[int | str] = (),
        progress_notify: bool = False,
        fragment: bool = False,
    ) -> Watch:
        """Create a watch and wait until the server confirmed it."""
        if self._closed:
            raise errors.ClientClosedError("watcher is closed")
        k, end = key_range(key, range_end, prefix=prefix, from_key=from_key)
        fl = [FILTERS[f.lower()] if isinstance(f, str) else int(f) for f in filters]
        req = rpc_pb2.WatchCreateRequest(
            key=k,
            range_end=end,
            start_revision=start_revision,
            prev_kv=prev_kv,
            filters=fl,  # type: ignore[arg-type]
            progress_notify=progress_notify,
            fragment=fragment,
        )
        w = Watch(self, req, next_rev=start_revision)
        w.created_fut = asyncio.get_running_loop().create_future()
        self._ensure_task()
        await self._create(w)
        try:
            # bounded by the client's request timeout, if it has one
            await asyncio.wait_for(asyncio.shield(w.created_fut), self._t.timeout or None)
        except TimeoutError:
            await self.cancel(w)
            raise errors.DeadlineExceededError(
                "context deadline exceeded", grpc.StatusCode.DEADLINE_EXCEEDED
            ) from None
        return w

    async def request_progress(self) -> None:
        """Ask the server for a progress notification on this stream."""
        await self._send(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))

    async def cancel(self, w: Watch) -> None:
        if w.closed:
            return
        if w.watch_id >= 0 and self._watches.get(w.watch_id) is w and self._call is not None:
            with contextlib.suppress(Exception):
                await self._send(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=w.watch_id)))
        self._watches.pop(w.watch_id, None)
        if w in self._waiting:
            self._waiting.remove(w)
        w._finish()

    async def close(self) -> None:
        self._closed = True
        for w in list(self._watches.values()) + list(self._pending) + self._waiting:
            w._finish()
        self._watches.clear()
        self._pending.clear()
        self._waiting.clear()
        if self._call is not None:
            self._call.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # -- internals ---------------------------------------------------------------
    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _send(self, req: rpc_pb2.WatchRequest) -> None:
        async with self._write_lock:
            if self._call is None:
                raise errors.UnavailableError("watch stream is down", grpc.StatusCode.UNAVAILABLE)
            try:
                await self._call.write(req)
            except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
                # the stream already ended; the read loop notices and reconnects
                raise errors.UnavailableError("watch stream is down", grpc.StatusCode.UNAVAILABLE) from None

    async def _create(self, w: Watch) -> None:
        req = rpc_pb2.WatchCreateRequest()
        req.CopyFrom(w.request)
        req.start_revision = w.next_rev
        if not self._stream_up.is_set():
            self._waiting.append(w)
            return
        self._pending.append(w)
        # if the stream broke, _run re-creates everything pending
        with contextlib.suppress(errors.EtcdError):
            await self._send(rpc_pb2.WatchRequest(create_request=req))

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                ep = await self._t.pick_connected()
                md = await self._t.metadata(ep, None)
                stub = ep.method("/etcdserverpb.Watch/Watch", rpc_pb2.WatchResponse, kind="bidi")
                call = stub(metadata=md or None)
                self._call = call
                self.endpoint = ep.url
                # everything not yet confirmed on the old stream is re-created here
                todo = list(self._watches.values()) + list(self._pending) + self._waiting
                self._watches.clear()
                self._pending.clear()
                self._waiting.clear()
                self._stream_up.set()
                for w in todo:
                    if not w.closed:
                        await self._create(w)
                delay = 0.05
                await self._read_loop(call)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as e:
                if self._fatal(e):
                    self._fail_all(errors.from_rpc_error(e))
                    return
            except errors.EtcdError as e:
                if isinstance(e, errors.AuthFailedError | errors.PermissionDeniedError):
                    self._fail_all(e)
                    return
            finally:
                self._stream_up.clear()
                self._call = None
                self.endpoint = ""
            if self._closed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _fatal(e: grpc.aio.AioRpcError) -> bool:
        return e.code() in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.UNIMPLEMENTED,
        )

    def _fail_all(self, exc: BaseException) -> None:
        for w in list(self._watches.values()) + list(self._pending) + self._waiting:
            w._finish(exc)
        self._watches.clear()
        self._pending.clear()
        self._waiting.clear()

    async def _read_loop(self, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            resp = await call.read()
            if resp is grpc.aio.EOF:
                return
            assert isinstance(resp, rpc_pb2.WatchResponse)
            self._dispatch(resp)

    def _dispatch(self, resp: rpc_pb2.WatchResponse) -> None:
        if resp.created:
            if not self._pending:
                return
            w = self._pending.popleft()
            if resp.canceled:
                w._finish(self._cancel_error(resp))
                return
            w.watch_id = resp.watch_id
            if w.closed:
                # cancelled while being created: tell the server
                asyncio.get_running_loop().create_task(
                    self._send_quiet(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=resp.watch_id)))
                )
                return
            self._watches[resp.watch_id] = w
            if w.next_rev == 0:
                w.next_rev = resp.header.revision + 1
            if w.created_revision == 0:
                w.created_revision = resp.header.revision
            first = w.created_fut is not None and not w.created_fut.done()
            if first:
                assert w.created_fut is not None
                w.created_fut.set_result(None)
                w.queue.put_nowait(WatchResponse(resp.header, [], resp.watch_id, created=True))
            return
        if resp.watch_id == -1:
            # stream-wide progress notification
            for w in self._watches.values():
                w.queue.put_nowait(WatchResponse(resp.header, [], w.watch_id))
            return
        target = self._watches.get(resp.watch_id)
        if target is None:
            return
        if resp.canceled:
            self._watches.pop(resp.watch_id, None)
            if resp.compact_revision or resp.cancel_reason:
                target._finish(self._cancel_error(resp))
            else:
                target._finish()
            return
        if resp.fragment:
            target._fragments.extend(resp.events)
            return
        events = list(resp.events)
        if target._fragments:
            events = target._fragments + events
            target._fragments = []
        if events:
            target.next_rev = events[-1].kv.mod_revision + 1
        elif resp.header.revision + 1 > target.next_rev:
            target.next_rev = resp.header.revision + 1
        target.queue.put_nowait(WatchResponse(resp.header, events, resp.watch_id))

    async def _send_quiet(self, req: rpc_pb2.WatchRequest) -> None:
        with contextlib.suppress(Exception):
            await self._send(req)

    @staticmethod
    def _cancel_error(resp: rpc_pb2.WatchResponse) -> errors.EtcdError:
        err: errors.EtcdError
        if resp.compact_revision:
            err = errors.CompactedError(
                "etcdserver: mvcc: required revision has been compacted",
                grpc.StatusCode.OUT_OF_RANGE,
                compact_revision=resp.compact_revision,
            )
        else:
            err = errors.WatchCanceledError(resp.cancel_reason or "etcdserver: watch canceled")
        # the final response, for callers that print it (etcdctl does)
        err.response = WatchResponse(
            resp.header, list(resp.events), resp.watch_id, created=resp.created, canceled=True,
            compact_revision=resp.compact_revision, cancel_reason=resp.cancel_reason,
        )
        return err
