"""A distributed mutex (etcd's lock recipe)."""

from __future__ import annotations

import asyncio
import contextlib

from kvetch.api.etcdserverpb import rpc_pb2

from ..errors import EtcdError
from ..ops import Compare, Op
from ._wait import wait_deletes
from .session import Session, SessionExpiredError


class LockedError(EtcdError):
    """``try_lock`` found the mutex held by another session."""

    def __init__(self) -> None:
        super().__init__("mutex: Locked by another session")


class Mutex:
    """``m = Mutex(session, "name"); await m.lock(); ...; await m.unlock()``."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.prefix = name + "/"
        self.key = ""
        self.revision = -1
        self.header: rpc_pb2.ResponseHeader | None = None

    async def _try_acquire(self) -> rpc_pb2.TxnResponse:
        c = self.session.client
        self.key = f"{self.prefix}{self.session.lease_id:x}"
        owner = Op.get(self.prefix, prefix=True, sort_target="create", sort_order="ascend", limit=1)
        resp = await (
            c.txn()
            .if_(Compare.create(self.key, "=", 0))
            .then(Op.put(self.key, "", lease=self.session.lease_id), owner)
            .else_(Op.get(self.key), owner)
            .commit()
        )
        self.revision = resp.header.revision
        if not resp.succeeded:
            self.revision = resp.responses[0].response_range.kvs[0].create_revision
        return resp

    def _is_owner(self, resp: rpc_pb2.TxnResponse) -> bool:
        kvs = resp.responses[1].response_range.kvs
        return not kvs or kvs[0].create_revision == self.revision

    async def try_lock(self) -> None:
        resp = await self._try_acquire()
        if self._is_owner(resp):
            self.header = resp.header
            return
        await self.session.client.delete(self.key)
        self.key, self.revision = "\x00", -1
        raise LockedError()

    async def lock(self) -> None:
        """Block until this session holds the mutex."""
        resp = await self._try_acquire()
        if self._is_owner(resp):
            self.header = resp.header
            return
        c = self.session.client
        try:
            await wait_deletes(c, self.prefix.encode(), self.revision - 1)
        except (EtcdError, asyncio.CancelledError):
            with contextlib.suppress(EtcdError):
                await asyncio.shield(self.unlock())
            raise
        got = await c.get(self.key)
        if not got.kvs:
            raise SessionExpiredError()
        self.header = got.header

    async def unlock(self) -> None:
        if self.key and self.key != "\x00":
            await self.session.client.delete(self.key)
        self.key, self.revision = "\x00", -1

    async def __aenter__(self) -> Mutex:
        await self.lock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unlock()
