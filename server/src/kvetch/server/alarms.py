"""The alarm table (NOSPACE, CORRUPT) of the cluster, persisted in the backend's alarm bucket."""

from __future__ import annotations

from collections.abc import Iterable

from kvetch.api.etcdserverpb import rpc_pb2

AlarmType = rpc_pb2.AlarmType


class Alarms:
    """Active alarms keyed by (member ID, alarm type)."""

    def __init__(self, initial: Iterable[rpc_pb2.AlarmMember] = ()) -> None:
        self._active: dict[tuple[int, int], rpc_pb2.AlarmMember] = {}
        for a in initial:
            self._active[(a.memberID, a.alarm)] = a

    def get(self, alarm: int = AlarmType.NONE) -> list[rpc_pb2.AlarmMember]:
        return [a for (_, t), a in sorted(self._active.items()) if alarm == AlarmType.NONE or t == alarm]

    def activate(self, member_id: int, alarm: int) -> rpc_pb2.AlarmMember | None:
        """Raise an alarm; returns the record, or None for NONE."""
        if alarm == AlarmType.NONE:
            return None
        rec = rpc_pb2.AlarmMember(memberID=member_id, alarm=alarm)  # type: ignore[arg-type]
        self._active[(member_id, alarm)] = rec
        return rec

    def deactivate(self, member_id: int, alarm: int) -> rpc_pb2.AlarmMember | None:
        return self._active.pop((member_id, alarm), None)

    def has(self, alarm: int) -> bool:
        return any(t == alarm for (_, t) in self._active)

    @staticmethod
    def describe(a: rpc_pb2.AlarmMember) -> str:
        """etcd's text form of an alarm, as Status.errors carries it."""
        return f"memberID:{a.memberID} alarm:{rpc_pb2.AlarmType.Name(a.alarm)} "
