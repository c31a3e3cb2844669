"""The Maintenance API: status, alarms, defragment, hashes, snapshot, move-leader, downgrade.

Calls that are about one member (status, defragment, hash, snapshot) take an
``endpoint`` to pin them; without it they go to the next balanced endpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import grpc.aio

from kvetch.api.etcdserverpb import rpc_pb2

from . import errors
from .transport import Transport, _remaining

ALARM_TYPES = {"NONE": 0, "NOSPACE": 1, "CORRUPT": 2}
DOWNGRADE_ACTIONS = {"validate": 0, "enable": 1, "cancel": 2}


class Maintenance:
    """Maintenance calls."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def status(self, *, endpoint: str | None = None, timeout: float | None = None) -> rpc_pb2.StatusResponse:
        return await self._t.unary(
            "Maintenance/Status", rpc_pb2.StatusRequest(), rpc_pb2.StatusResponse, idempotent=True,
            timeout=timeout, endpoint=endpoint,
        )

    async def alarm_list(self, *, timeout: float | None = None) -> rpc_pb2.AlarmResponse:
        req = rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.GET)
        return await self._t.unary("Maintenance/Alarm", req, rpc_pb2.AlarmResponse, idempotent=True, timeout=timeout)

    async def alarm_activate(
        self, member_id: int, alarm: int | str, *, timeout: float | None = None
    ) -> rpc_pb2.AlarmResponse:
        """Raise an alarm by hand (operators and tests; the server raises NOSPACE/CORRUPT itself)."""
        a = ALARM_TYPES[alarm] if isinstance(alarm, str) else alarm
        req = rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=member_id, alarm=a)  # type: ignore[arg-type]
        return await self._t.unary("Maintenance/Alarm", req, rpc_pb2.AlarmResponse, idempotent=False, timeout=timeout)

    async def alarm_disarm(
        self, member_id: int = 0, alarm: int | str = 0, *, timeout: float | None = None
    ) -> rpc_pb2.AlarmResponse:
        """Disarm one alarm, or (member 0, alarm NONE) every active alarm."""
        a = ALARM_TYPES[alarm] if isinstance(alarm, str) else alarm
        if member_id == 0 and a == 0:
            listed = await self.alarm_list(timeout=timeout)
            # like clientv3, the combined answer has no header of its own
            resp = rpc_pb2.AlarmResponse()
            for am in listed.alarms:
                one = await self.alarm_disarm(am.memberID, am.alarm, timeout=timeout)
                resp.alarms.extend(one.alarms)
            return resp
        req = rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.DEACTIVATE, memberID=member_id, alarm=a)  # type: ignore[arg-type]
        return await self._t.unary("Maintenance/Alarm", req, rpc_pb2.AlarmResponse, idempotent=False, timeout=timeout)

    async def defragment(
        self, *, endpoint: str | None = None, timeout: float | None = None
    ) -> rpc_pb2.DefragmentResponse:
        return await self._t.unary(
            "Maintenance/Defragment", rpc_pb2.DefragmentRequest(), rpc_pb2.DefragmentResponse, idempotent=False,
            timeout=timeout, endpoint=endpoint,
        )

    async def hash(self, *, endpoint: str | None = None, timeout: float | None = None) -> rpc_pb2.HashResponse:
        return await self._t.unary(
            "Maintenance/Hash", rpc_pb2.HashRequest(), rpc_pb2.HashResponse, idempotent=True,
            timeout=timeout, endpoint=endpoint,
        )

    async def hash_kv(
        self, revision: int = 0, *, endpoint: str | None = None, timeout: float | None = None
    ) -> rpc_pb2.HashKVResponse:
        return await self._t.unary(
            "Maintenance/HashKV", rpc_pb2.HashKVRequest(revision=revision), rpc_pb2.HashKVResponse,
            idempotent=True, timeout=timeout, endpoint=endpoint,
        )

    async def snapshot(
        self, path: str | os.PathLike[str], *, endpoint: str | None = None, timeout: float | None = None
    ) -> int:
        """Stream the backend snapshot into ``path`` (written to ``path.part``, fsynced, renamed).

        Returns the number of bytes written.
        """
        deadline = self._t.deadline(timeout)
        ep = self._t.find(endpoint) if endpoint else await self._t.pick_connected(deadline)
        md = await self._t.metadata(ep, deadline)
        stub = ep.method("/etcdserverpb.Maintenance/Snapshot", rpc_pb2.SnapshotResponse, kind="stream")
        dest = Path(path)
        part = dest.with_name(dest.name + ".part")
        n = 0
        try:
            with open(part, "wb") as f:
                call = stub(rpc_pb2.SnapshotRequest(), metadata=md or None, timeout=_remaining(deadline))
                async for resp in call:
                    f.write(resp.blob)
                    n += len(resp.blob)
                f.flush()
                os.fsync(f.fileno())
        except grpc.aio.AioRpcError as e:
            part.unlink(missing_ok=True)
            raise errors.from_rpc_error(e) from None
        os.replace(part, dest)
        return n

    async def move_leader(
        self, target_id: int, *, endpoint: str | None = None, timeout: float | None = None
    ) -> rpc_pb2.MoveLeaderResponse:
        """Transfer leadership; must reach the current leader (``endpoint``)."""
        return await self._t.unary(
            "Maintenance/MoveLeader", rpc_pb2.MoveLeaderRequest(targetID=target_id), rpc_pb2.MoveLeaderResponse,
            idempotent=False, timeout=timeout, endpoint=endpoint,
        )

    async def downgrade(
        self, action: int | str, version: str, *, timeout: float | None = None
    ) -> rpc_pb2.DowngradeResponse:
        a = DOWNGRADE_ACTIONS[action.lower()] if isinstance(action, str) else action
        req = rpc_pb2.DowngradeRequest(action=a, version=version)  # type: ignore[arg-type]
        return await self._t.unary(
            "Maintenance/Downgrade", req, rpc_pb2.DowngradeResponse, idempotent=False, timeout=timeout
        )
