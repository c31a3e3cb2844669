"""Drive a Raft node for a member: ticks, the Ready loop, persistence, peers, ReadIndex.

The node's log lives in a ``MemoryStorage`` rebuilt from the WAL on start (as
etcd does); every Ready is handled in order: entries and hard state are
appended to the WAL and fsynced (one fsync per Ready: group commit), then the
messages go to the peers, then committed entries are handed to the member's
apply function, then read states release waiting linearizable reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import struct
import time
from collections.abc import Callable
from typing import Any

from kvetch.raft import (
    LEADER,
    NONE,
    ConfChange,
    Config,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    ProposalDropped,
    RawNode,
    Snapshot,
    bootstrap_entries,
)
from kvetch.raft.types import ENTRY_CONF_CHANGE
from kvetch.server import errors
from kvetch.storage.wal import WAL
from kvetch.storage.wal import Entry as WalEntry
from kvetch.storage.wal import HardState as WalHardState
from kvetch.storage.wal import SnapshotMarker as WalSnapshotMarker

#: Resend an unanswered ReadIndex after this long (etcd's readIndexRetryTime).
READ_INDEX_RETRY_SECONDS = 0.5

ApplyFn = Callable[[list[Entry]], None]


def storage_from_wal(wal: WAL) -> MemoryStorage:
    """The Raft log as the WAL holds it (entries after the last snapshot marker, hard state)."""
    contents = wal.read_all()
    st = MemoryStorage()
    if contents.snapshot is not None:
        from kvetch.raft import Snapshot, SnapshotMetadata
        from kvetch.raft.codec import decode_conf_state

        cs = decode_conf_state(contents.snapshot.data) if contents.snapshot.data else None
        meta = SnapshotMetadata(index=contents.snapshot.index, term=contents.snapshot.term)
        if cs is not None:
            meta.conf_state = cs
        st.apply_snapshot(Snapshot(metadata=meta))
    if contents.entries:
        st.append([Entry(term=e.term, index=e.index, type=e.type, data=e.data) for e in contents.entries])
    if contents.hard_state is not None:
        hs = contents.hard_state
        st.set_hard_state(HardState(term=hs.term, vote=hs.vote, commit=hs.commit))
    return st


class RaftNode:
    def __init__(self, *, member_id: int, wal: WAL, voters: list[int], new_cluster: bool,
                 applied: int, heartbeat_ms: int, election_ms: int, pre_vote: bool,
                 apply: ApplyFn, on_leader_change: Callable[[int, int], None], log: Any,
                 install_snapshot: Callable[[Snapshot], None] | None = None,
                 storage: MemoryStorage | None = None) -> None:
        self.id = member_id
        self.wal = wal
        self.log = log
        self.apply = apply
        self.on_leader_change = on_leader_change
        self.install_snapshot = install_snapshot
        self.heartbeat = heartbeat_ms / 1000.0
        if storage is not None:
            self.storage = storage  # prepared by the caller (a lone member turning into a cluster)
        elif wal.last_index() == 0 and new_cluster and voters:
            # A brand-new cluster: persist the bootstrap log before the node starts.
            ents, hs = bootstrap_entries(voters, [])
            wal.append([WalEntry(e.index, e.term, e.data, e.type) for e in ents],
                       WalHardState(hs.term, hs.vote, hs.commit))
            wal.sync()
            self.storage = MemoryStorage()
            self.storage.append(ents)
            self.storage.set_hard_state(hs)
        else:
            self.storage = storage_from_wal(wal)
        if storage is None:
            wal.release_contents()
        # Restart from the snapshot (or 0): Raft hands back every committed entry after it so conf
        # changes rebuild the membership; the member skips normal entries its backend already
        # holds (index <= consistent index), as etcd does. The WAL's hard state may lag the
        # backend after a crash, so the backend's index cannot be trusted as Raft's `applied`.
        del applied
        snap_index = self.storage.snap.metadata.index
        self.node = RawNode(Config(
            id=member_id, storage=self.storage, election_tick=max(2, election_ms // heartbeat_ms),
            heartbeat_tick=1, applied=snap_index, pre_vote=pre_vote, check_quorum=True,
            max_size_per_msg=1 << 20, max_inflight_msgs=512, rng=random.Random(member_id ^ int(time.time())),
        ))
        self.transport: Any = None
        self.leader = NONE
        self._leading = False  # raft state is LEADER (from the last SoftState)
        self.term = self.storage.initial_state()[0].term
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._reads: dict[bytes, asyncio.Future[int]] = {}  # ReadIndex request ctx -> its answer
        self._read_ids = itertools.count(1)
        self._read_waiting: list[asyncio.Future[int]] = []  # reads for the next round
        self._read_round: list[asyncio.Future[int]] = []  # reads of the round in flight
        self._read_kick = asyncio.Event()
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._tick_loop(), name="raft-tick"),
                       loop.create_task(self._ready_loop(), name="raft-ready"),
                       loop.create_task(self._read_loop(), name="raft-read-index")]
        self._wake.set()

    async def stop(self) -> None:
        self._stopped = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for fut in [*self._reads.values(), *self._read_round, *self._read_waiting]:
            if not fut.done():
                fut.set_exception(errors.STOPPED)

    # --- inputs ------------------------------------------------------------------
    def step(self, msgs: list[Message]) -> None:
        for m in msgs:
            try:
                self.node.step(m)
            except Exception as exc:  # a peer's bad message must not stop the member
                self.log.warn("failed to process raft message", error=repr(exc), type=m.type)
        self._wake.set()

    def propose(self, data: bytes) -> None:
        try:
            self.node.propose(data)
        except ProposalDropped:
            raise errors.NO_LEADER from None
        self._wake.set()

    def propose_conf_change(self, cc: ConfChange) -> None:
        try:
            self.node.propose_conf_change(cc)
        except ProposalDropped:
            raise errors.NO_LEADER from None
        self._wake.set()

    def report_unreachable(self, member_id: int) -> None:
        self.node.report_unreachable(member_id)

    def report_snapshot(self, member_id: int, ok: bool) -> None:
        self.node.report_snapshot(member_id, ok)

    def transfer_leader(self, to: int) -> None:
        self.node.transfer_leader(to)
        self._wake.set()

    async def read_index(self, timeout: float) -> int:
        """A linearizable read point: the commit index confirmed by a quorum (etcd's ReadIndex).

        Reads are batched as in etcd's linearizableReadLoop: a read joins the next
        ReadIndex round (never one already in flight, whose index may predate it),
        and one heartbeat round answers every read that joined it.
        """
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._read_waiting.append(fut)
        self._read_kick.set()
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise errors.TIMEOUT from None

    async def _read_loop(self) -> None:
        """One ReadIndex round at a time for all waiting reads; unanswered rounds are resent."""
        loop = asyncio.get_running_loop()
        while True:
            await self._read_kick.wait()
            self._read_kick.clear()
            self._read_round = [f for f in self._read_waiting if not f.done()]
            self._read_waiting = []
            while self._read_round:
                ctx = struct.pack(">QQ", self.id, next(self._read_ids))
                answer: asyncio.Future[int] = loop.create_future()
                self._reads[ctx] = answer
                try:
                    self.node.read_index(ctx)
                except ProposalDropped:
                    self._settle_round(error=errors.NO_LEADER)
                    break
                finally:
                    self._wake.set()
                try:
                    index = await asyncio.wait_for(answer, READ_INDEX_RETRY_SECONDS)
                except TimeoutError:  # lost on the way (leader change, dropped message): ask again
                    self._read_round = [f for f in self._read_round if not f.done()]
                    continue
                except errors.RPCError as err:
                    self._settle_round(error=err)
                    break
                finally:
                    self._reads.pop(ctx, None)
                self._settle_round(index=index)

    def _settle_round(self, *, index: int = 0, error: errors.RPCError | None = None) -> None:
        for f in self._read_round:
            if f.done():
                continue
            if error is not None:
                f.set_exception(error)
            else:
                f.set_result(index)
        self._read_round = []

    def is_leader(self) -> bool:
        return self.leader == self.id and self.node.status().raft_state == LEADER

    def status(self) -> Any:
        return self.node.status()

    # --- loops -------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            self.node.tick()
            self._wake.set()

    async def _ready_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.node.has_ready():
                rd = self.node.ready()
                if rd.soft_state is not None:
                    self._leading = rd.soft_state.raft_state == LEADER
                    if rd.soft_state.lead != self.leader:
                        old = self.leader
                        self.leader = rd.soft_state.lead
                        self.on_leader_change(old, self.leader)
                # A leader sends before its own fsync (Raft thesis 10.2.1, as etcd does): its
                # entries count toward commit only once persisted, so replication and the local
                # fsync overlap. Everyone else persists first (votes, acks promise durability).
                send_early = self._leading and bool(rd.messages) and self.transport is not None
                if send_early:
                    self.transport.send(rd.messages)
                if rd.hard_state is not None:
                    self.term = rd.hard_state.term
                if rd.snapshot is not None and rd.snapshot.metadata.index > 0:
                    await self._receive_snapshot(rd.snapshot)
                if rd.entries or rd.hard_state is not None:
                    records = [WalEntry(e.index, e.term, e.data, e.type) for e in rd.entries]
                    hs = rd.hard_state
                    whs = WalHardState(hs.term, hs.vote, hs.commit) if hs is not None else None
                    await loop.run_in_executor(None, self._persist, records, whs, rd.must_sync)
                    if rd.entries:
                        self.storage.append(rd.entries)
                    if hs is not None:
                        self.storage.set_hard_state(hs)
                if rd.messages and self.transport is not None and not send_early:
                    self.transport.send(rd.messages)
                if rd.committed_entries:
                    self._apply_committed(rd.committed_entries)
                for rs in rd.read_states:
                    fut = self._reads.get(rs.request_ctx)
                    if fut is not None and not fut.done():
                        fut.set_result(rs.index)
                self.node.advance(rd)

    async def _receive_snapshot(self, snap: Snapshot) -> None:
        """A snapshot from the leader: install the backend it carries, then the Raft log state."""
        from kvetch.raft.codec import encode_conf_state

        loop = asyncio.get_running_loop()
        if self.install_snapshot is not None:
            self.install_snapshot(snap)
        marker = WalSnapshotMarker(snap.metadata.index, snap.metadata.term,
                                   encode_conf_state(snap.metadata.conf_state))

        def persist() -> None:
            self.wal.save_snapshot(marker)
            self.wal.sync()
        await loop.run_in_executor(None, persist)
        self.storage.apply_snapshot(Snapshot(metadata=snap.metadata))
        self.log.info("applied incoming snapshot", **{"snapshot-index": snap.metadata.index,
                                                      "snapshot-size": len(snap.data)})

    def take_snapshot(self, index: int, keep_entries: int) -> int:
        """Record a snapshot at applied ``index`` and compact the in-memory and on-disk log.

        The caller has made the backend durable up to ``index``. Returns the compaction index.
        """
        from kvetch.raft.codec import encode_conf_state

        cs = self.node.status().conf_state
        snap = self.storage.create_snapshot(index, cs, b"")
        self.wal.save_snapshot(WalSnapshotMarker(index, snap.metadata.term, encode_conf_state(cs)))
        self.wal.sync()
        compact_to = index - keep_entries
        if compact_to > self.storage.first_index():
            self.storage.compact(compact_to)
            self.wal.release_to(compact_to)
        return compact_to

    def _persist(self, records: list[WalEntry], hs: WalHardState | None, must_sync: bool) -> None:
        self.wal.append(records, hs)
        if must_sync:
            self.wal.sync()

    def _apply_committed(self, entries: list[Entry]) -> None:
        batch: list[Entry] = []
        for e in entries:
            if e.type == ENTRY_CONF_CHANGE:
                if batch:
                    self.apply(batch)
                    batch = []
                self.apply([e])
            else:
                batch.append(e)
        if batch:
            self.apply(batch)
