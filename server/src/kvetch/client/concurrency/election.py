"""Leader election (etcd's election recipe): campaign, proclaim, leader, observe, resign."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.mvccpb import kv_pb2

from ..errors import EtcdError
from ..ops import Compare, KeyLike, Op, to_bytes
from ._wait import wait_deletes
from .session import Session, SessionExpiredError


class NotLeaderError(EtcdError):
    def __init__(self) -> None:
        super().__init__("election: not leader")


class NoLeaderError(EtcdError):
    def __init__(self) -> None:
        super().__init__("election: no leader")


class Election:
    """One participant (or observer) of the election called ``name``."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.prefix = name + "/"
        self.key = ""
        self.revision = 0
        self.header: rpc_pb2.ResponseHeader | None = None
        self._leading = False

    async def campaign(self, value: KeyLike) -> None:
        """Block until elected, then the election key holds ``value``."""
        c = self.session.client
        val = to_bytes(value)
        k = f"{self.prefix}{self.session.lease_id:x}"
        resp = await (
            c.txn()
            .if_(Compare.create(k, "=", 0))
            .then(Op.put(k, val, lease=self.session.lease_id))
            .else_(Op.get(k))
            .commit()
        )
        self.key, self.revision, self._leading = k, resp.header.revision, True
        if not resp.succeeded:
            kv = resp.responses[0].response_range.kvs[0]
            self.revision = kv.create_revision
            if kv.value != val:
                try:
                    await self.proclaim(val)
                except EtcdError:
                    await self.resign()
                    raise
        try:
            await wait_deletes(c, self.prefix.encode(), self.revision - 1)
        except (EtcdError, asyncio.CancelledError):
            with contextlib.suppress(EtcdError):
                await asyncio.shield(self.resign())
            raise
        self.header = resp.header

    async def proclaim(self, value: KeyLike) -> None:
        """Change the leader's value without a new election."""
        if not self._leading:
            raise NotLeaderError()
        c = self.session.client
        resp = await (
            c.txn()
            .if_(Compare.create(self.key, "=", self.revision))
            .then(Op.put(self.key, value, lease=self.session.lease_id))
            .commit()
        )
        if not resp.succeeded:
            self.key = ""
            raise NotLeaderError()
        self.header = resp.header

    async def resign(self) -> None:
        """Give up leadership (or the candidacy)."""
        if not self._leading:
            return
        c = self.session.client
        resp = await c.txn().if_(Compare.create(self.key, "=", self.revision)).then(Op.delete(self.key)).commit()
        self.key, self.revision, self._leading = "", 0, False
        self.header = resp.header

    async def leader(self) -> rpc_pb2.RangeResponse:
        """The current leader's key-value (a RangeResponse with one kv)."""
        resp = await self.session.client.get(self.prefix, prefix=True, sort_target="create", sort_order="ascend", limit=1)
        if not resp.kvs:
            raise NoLeaderError()
        return resp

    async def observe(self) -> AsyncIterator[rpc_pb2.RangeResponse]:
        """Yield the leader (as a one-kv RangeResponse) now and every time it changes."""
        c = self.session.client
        pfx = self.prefix.encode()
        while True:
            resp = await c.get(pfx, prefix=True, sort_target="create", sort_order="ascend", limit=1)
            header = rpc_pb2.ResponseHeader()
            header.CopyFrom(resp.header)
            if resp.kvs:
                kv = resp.kvs[0]
            else:
                found: kv_pb2.KeyValue | None = None
                w = await c.watch(pfx, prefix=True, start_revision=resp.header.revision)
                try:
                    async for wr in w:
                        for ev in wr.events:
                            if ev.type == kv_pb2.Event.PUT:
                                found = ev.kv
                                header.CopyFrom(wr.header)
                                header.revision = ev.kv.mod_revision
                                break
                        if found is not None:
                            break
                finally:
                    await w.cancel()
                if found is None:
                    raise EtcdError("election: observer lost")
                kv = found
            yield rpc_pb2.RangeResponse(header=header, kvs=[kv])
            w = await c.watch(kv.key, start_revision=header.revision + 1)
            try:
                deleted = False
                async for wr in w:
                    for ev in wr.events:
                        if ev.type == kv_pb2.Event.DELETE:
                            deleted = True
                            break
                        yield rpc_pb2.RangeResponse(header=wr.header, kvs=[ev.kv])
                    if deleted:
                        break
            finally:
                await w.cancel()

    @property
    def session_expired(self) -> bool:
        return self.session.expired


__all__ = ["Election", "NoLeaderError", "NotLeaderError", "SessionExpiredError"]
