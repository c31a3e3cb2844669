"""Bookkeeping of pending ReadIndex requests on the leader (safe mode, thesis §6.4):
each request remembers the commit index at arrival and collects heartbeat acks;
once a quorum acked, it and every earlier request can be answered."""

from __future__ import annotations

from .types import Message


class ReadIndexStatus:
    __slots__ = ("acks", "index", "req")

    def __init__(self, req: Message, index: int) -> None:
        self.req = req
        self.index = index
        self.acks: dict[int, bool] = {}


class ReadOnly:
    __slots__ = ("pending", "queue")

    def __init__(self) -> None:
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.entries[0].data
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(m, index)
        self.queue.append(ctx)

    def recv_ack(self, id_: int, ctx: bytes) -> dict[int, bool] | None:
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks[id_] = True
        return rs.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Pop every request up to and including the one with ctx."""
        try:
            i = self.queue.index(ctx)
        except ValueError:
            return []
        done = [self.pending.pop(c) for c in self.queue[: i + 1]]
        del self.queue[: i + 1]
        return done

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""
