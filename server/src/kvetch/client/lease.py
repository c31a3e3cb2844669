"""The Lease API: grant, revoke, time-to-live, list, and keep-alive streams."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc
import grpc.aio

from kvetch.api.etcdserverpb import rpc_pb2

from . import errors
from .transport import Transport


class Lease:
    """Lease calls. ``keep_alive`` yields a response for every renewal until cancelled."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def grant(self, ttl: int, lease_id: int = 0, *, timeout: float | None = None) -> rpc_pb2.LeaseGrantResponse:
        req = rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=lease_id)
        resp = await self._t.unary(
            "Lease/LeaseGrant", req, rpc_pb2.LeaseGrantResponse, idempotent=False, timeout=timeout
        )
        if resp.error:
            raise errors.EtcdError(resp.error)
        return resp

    async def revoke(self, lease_id: int, *, timeout: float | None = None) -> rpc_pb2.LeaseRevokeResponse:
        req = rpc_pb2.LeaseRevokeRequest(ID=lease_id)
        return await self._t.unary(
            "Lease/LeaseRevoke", req, rpc_pb2.LeaseRevokeResponse, idempotent=False, timeout=timeout
        )

    async def time_to_live(
        self, lease_id: int, *, keys: bool = False, timeout: float | None = None
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        req = rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id, keys=keys)
        return await self._t.unary(
            "Lease/LeaseTimeToLive", req, rpc_pb2.LeaseTimeToLiveResponse, idempotent=True, timeout=timeout
        )

    async def leases(self, *, timeout: float | None = None) -> rpc_pb2.LeaseLeasesResponse:
        return await self._t.unary(
            "Lease/LeaseLeases", rpc_pb2.LeaseLeasesRequest(), rpc_pb2.LeaseLeasesResponse, idempotent=True,
            timeout=timeout,
        )

    async def keep_alive_once(self, lease_id: int, *, timeout: float | None = None) -> rpc_pb2.LeaseKeepAliveResponse:
        """Renew once; raises :class:`LeaseNotFoundError` if the lease is gone."""
        deadline = self._t.deadline(timeout)
        ep = await self._t.pick_connected(deadline)
        md = await self._t.metadata(ep, deadline)
        stub = ep.method("/etcdserverpb.Lease/LeaseKeepAlive", rpc_pb2.LeaseKeepAliveResponse, kind="bidi")
        call = stub(metadata=md or None, timeout=None if deadline is None else max(0.001, deadline - _now()))
        try:
            await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
            resp = await call.read()
            await call.done_writing()
        except grpc.aio.AioRpcError as e:
            raise errors.from_rpc_error(e) from None
        except asyncio.InvalidStateError:
            raise errors.UnavailableError("keepalive stream closed", grpc.StatusCode.UNAVAILABLE) from None
        finally:
            call.cancel()
        if resp is grpc.aio.EOF:
            raise errors.UnavailableError("keepalive stream closed", grpc.StatusCode.UNAVAILABLE)
        assert isinstance(resp, rpc_pb2.LeaseKeepAliveResponse)
        if resp.TTL <= 0:
            raise errors.LeaseNotFoundError("etcdserver: requested lease not found", grpc.StatusCode.NOT_FOUND)
        return resp

    async def keep_alive(self, lease_id: int) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        """Renew every TTL/3 seconds, yielding each response; reconnects on stream failure.

        Ends with :class:`LeaseNotFoundError` when the lease expired or was revoked.
        """
        delay = 0.05
        while True:
            try:
                ep = await self._t.pick_connected()
                md = await self._t.metadata(ep, None)
                stub = ep.method("/etcdserverpb.Lease/LeaseKeepAlive", rpc_pb2.LeaseKeepAliveResponse, kind="bidi")
                call = stub(metadata=md or None)
                try:
                    while True:
                        await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
                        resp = await call.read()
                        if resp is grpc.aio.EOF:
                            break
                        assert isinstance(resp, rpc_pb2.LeaseKeepAliveResponse)
                        if resp.TTL <= 0:
                            raise errors.LeaseExpiredError(
                                "etcdserver: requested lease not found", grpc.StatusCode.NOT_FOUND
                            )
                        delay = 0.05
                        yield resp
                        await asyncio.sleep(max(resp.TTL / 3.0, 0.5))
                finally:
                    call.cancel()
            except grpc.aio.AioRpcError as e:
                err = errors.from_rpc_error(e)
                if not isinstance(err, errors.UnavailableError | errors.CancelledError):
                    raise err from None
            except (errors.UnavailableError, asyncio.InvalidStateError):
                # InvalidStateError: a write on a stream the transport already finished
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def _now() -> float:
    return time.monotonic()


class KeepAliveTask:
    """Runs a keep-alive loop in the background (used by sessions)."""

    def __init__(self, lease: Lease, lease_id: int) -> None:
        self.lease_id = lease_id
        self.last: rpc_pb2.LeaseKeepAliveResponse | None = None
        self.error: BaseException | None = None
        self.done = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(lease))

    async def _run(self, lease: Lease) -> None:
        try:
            async for resp in lease.keep_alive(self.lease_id):
                self.last = resp
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self.error = e
        finally:
            self.done.set()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
