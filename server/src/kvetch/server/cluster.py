"""Replicated mode of a member: Raft node, peer transport, membership changes, forwarding.

A member runs in this mode when it was bootstrapped with more than one initial
member or joined an existing cluster (``--initial-cluster-state existing``);
the choice is recorded in the backend so a restart keeps it. Proposals go
through Raft (followers forward them to the leader inside Raft), linearizable
reads wait for a ReadIndex, and membership changes are Raft conf changes whose
context carries the member record (as etcd's do).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from kvetch.api.etcdserverpb import raft_internal_pb2, rpc_pb2, rpc_pb2_grpc
from kvetch.api.membershippb import membership_pb2
from kvetch.obs.metrics import METRICS
from kvetch.peer.transport import PeerTransport, grpc_target
from kvetch.raft import NONE, ConfChange, Entry
from kvetch.raft.codec import decode_conf_change
from kvetch.raft.types import CONF_ADD_LEARNER_NODE, CONF_ADD_NODE, CONF_REMOVE_NODE, CONF_UPDATE_NODE
from kvetch.server import errors, ids
from kvetch.server.raftnode import RaftNode
from kvetch.version import __version__

if TYPE_CHECKING:
    from kvetch.server.core import KvetchServer, MemberInfo

META_RAFT_MODE = b"kvetch_raft_mode"
#: etcd's request timeout: 5s + 2 * election timeout.
BASE_REQUEST_TIMEOUT = 5.0


def member_record(m: MemberInfo) -> bytes:
    return json.dumps({"id": m.id, "name": m.name, "peerURLs": m.peer_urls,
                       "clientURLs": m.client_urls, "isLearner": m.is_learner}).encode()


class Cluster:
    def __init__(self, s: KvetchServer, *, new_cluster: bool, storage: Any = None) -> None:
        self.s = s
        cfg = s.cfg
        self.request_timeout = BASE_REQUEST_TIMEOUT + 2 * cfg.election_timeout / 1000.0
        voters = sorted(m.id for m in s.members.values() if not m.is_learner)
        self.raft = RaftNode(
            member_id=s.member_id, wal=s.wal, voters=voters, new_cluster=new_cluster,
            applied=s.applied_index, heartbeat_ms=cfg.heartbeat_interval, election_ms=cfg.election_timeout,
            pre_vote=cfg.pre_vote, apply=self._apply_entries, on_leader_change=self._leader_changed,
            log=s.log, install_snapshot=self._install_snapshot, storage=storage,
        )
        self.snapshot_count = max(1, cfg.snapshot_count)
        #: entries kept in the log behind a snapshot so slow followers catch up without one (etcd: 5000)
        self.catchup_entries = min(5000, self.snapshot_count)
        self._snap_index = self.raft.storage.snap.metadata.index
        self.transport = PeerTransport(
            member_id=s.member_id, cluster_id=s.cluster_id, version=__version__,
            on_messages=self.raft.step, on_unreachable=self.raft.report_unreachable,
            on_snapshot_status=self.raft.report_snapshot, log=s.log, members_json=self._members_json,
            prepare_snapshot=self._fill_snapshot, version_allowed=self._version_allowed,
        )
        self.raft.transport = self.transport
        self._conf_waiters: dict[int, asyncio.Future[Any]] = {}
        self._applied_event = asyncio.Event()
        self._published = False
        self._tasks: list[asyncio.Task[Any]] = []

    def _members_json(self) -> bytes:
        s = self.s
        return json.dumps({"cluster_id": s.cluster_id,
                           "members": [json.loads(member_record(m)) for m in s.members.values()]}).encode()

    # --- lifecycle ---------------------------------------------------------------
    async def start(self, peer_listen: list[tuple[str, int]]) -> None:
        for m in self.s.members.values():
            self.transport.set_peer(m.id, m.peer_urls)
        await self.transport.start(peer_listen)
        self.raft.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._publish_loop(), name="publish"))
        self._tasks.append(loop.create_task(self._version_loop(), name="cluster-version"))
        cfg = self.s.cfg
        if cfg.experimental_initial_corrupt_check or cfg.experimental_corrupt_check_time > 0:
            self._tasks.append(loop.create_task(self._corruption_loop(), name="corruption-check"))

    # --- cluster version ---------------------------------------------------------------
    def _version_allowed(self, remote: str) -> bool:
        """A peer may talk to us if it has our major version and can speak the cluster version
        (or is the target of an enabled downgrade)."""
        from kvetch.server import versions

        try:
            rmm = versions.parse_mm(remote)
        except (ValueError, IndexError):
            return False
        if rmm[0] != versions.parse_mm(__version__)[0]:
            return False
        s = self.s
        if not s.cluster_version or rmm >= versions.parse_mm(s.cluster_version):
            return True
        target = s.downgrade.get("target") if s.downgrade.get("enabled") else None
        return target is not None and versions.parse_mm(str(target)) == rmm
    def member_versions(self) -> dict[int, str | None]:
        """Server version of every member as the leader knows it (None: unknown or unreachable)."""
        s = self.s
        progress = self.raft.status().progress
        out: dict[int, str | None] = {}
        for m in s.members.values():
            if m.id == s.member_id:
                out[m.id] = __version__
            elif m.id in progress and progress[m.id].recent_active:
                out[m.id] = self.transport.peer_versions.get(f"{m.id:x}")
            else:
                out[m.id] = None
        return out

    async def _version_loop(self) -> None:
        """The leader decides the cluster version and completes downgrades (etcd's monitors)."""
        from kvetch.server import versions

        s = self.s
        while True:
            await asyncio.sleep(0.5)
            if not self.is_leader() or s._stopping:
                continue
            known = self.member_versions()
            target = s.downgrade.get("target") if s.downgrade.get("enabled") else None
            decided = versions.decide(s.cluster_version, known.values(), target)
            try:
                if decided is not None:
                    await s.propose(raft_internal_pb2.InternalRaftRequest(
                        cluster_version_set=membership_pb2.ClusterVersionSetRequest(ver=decided + ".0")))
                elif target and all(v is not None and versions.parse_mm(v) == versions.parse_mm(target)
                                    for v in known.values()):
                    await s.propose(raft_internal_pb2.InternalRaftRequest(
                        downgrade_info_set=membership_pb2.DowngradeInfoSetRequest(enabled=False)))
                    s.log.info("the cluster has been downgraded", **{"cluster-version": s.cluster_version})
            except errors.RPCError as exc:
                s.log.warn("failed to update cluster version", error=exc.message)

    # --- corruption check --------------------------------------------------------------
    async def _corruption_loop(self) -> None:
        """Compare HashKV with the peers: once after start (initial check) and periodically."""
        cfg = self.s.cfg
        if cfg.experimental_initial_corrupt_check:
            await self._wait_for_leader()
            await self.check_corruption(initial=True)
        interval = cfg.experimental_corrupt_check_time
        while interval > 0:
            await asyncio.sleep(interval)
            if self.is_leader():
                await self.check_corruption(initial=False)

    async def _wait_for_leader(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.raft.leader == NONE:
            if deadline is not None and time.monotonic() > deadline:
                raise errors.NO_LEADER
            await asyncio.sleep(0.05)

    async def check_corruption(self, *, initial: bool) -> list[int]:
        """HashKV of every peer at our revision; a different hash at the same compaction raises CORRUPT."""
        s = self.s
        local_hash, local_compact, rev = s.store.hash_kv(0)
        mismatched: list[int] = []
        for m in list(s.members.values()):
            if m.id == s.member_id or not m.client_urls:
                continue
            try:
                async with aio.insecure_channel(grpc_target(m.client_urls[0])) as ch:
                    resp = await rpc_pb2_grpc.MaintenanceStub(ch).HashKV(
                        rpc_pb2.HashKVRequest(revision=rev), timeout=5)
            except grpc.RpcError as exc:
                s.log.debug("cannot fetch hash from peer", **{"remote-peer-id": f"{m.id:x}",
                                                              "error": exc.details()})  # type: ignore[attr-defined]
                continue
            if resp.compact_revision == local_compact and resp.hash != local_hash:
                mismatched.append(m.id)
                s.log.error("found data inconsistency with peers" if not initial
                            else "checkInitialHashKV failed", **{
                                "local-member-id": f"{s.member_id:x}", "remote-peer-id": f"{m.id:x}",
                                "revision": rev, "local-hash": local_hash, "remote-hash": resp.hash})
        target = mismatched[0] if len(mismatched) == 1 else s.member_id
        if mismatched:
            # One odd peer is the corrupt one; if several disagree with us, we are.
            await s.propose(raft_internal_pb2.InternalRaftRequest(alarm=rpc_pb2.AlarmRequest(
                action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=target, alarm=rpc_pb2.CORRUPT)))
        return mismatched

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.raft.stop()
        await self.transport.stop()

    @property
    def term(self) -> int:
        return self.raft.term

    @property
    def leader(self) -> int:
        return self.raft.leader

    def is_leader(self) -> bool:
        return self.raft.leader == self.s.member_id

    # --- leadership --------------------------------------------------------------
    def _leader_changed(self, old: int, new: int) -> None:
        s = self.s
        METRICS.has_leader.set(1 if new != NONE else 0)
        METRICS.is_leader.set(1 if new == s.member_id else 0)
        if new != NONE:
            METRICS.leader_changes.inc()
        if new == s.member_id:
            # Leases get a grace period of one election timeout, as etcd's lessor.Promote.
            s.lessor.promote(extend=s.cfg.election_timeout / 1000.0)
            s.log.info("became leader", **{"member-id": f"{s.member_id:x}", "term": self.raft.term})
        else:
            s.lessor.demote()
            if new != NONE:
                s.log.info("leader changed", **{"member-id": f"{s.member_id:x}", "leader": f"{new:x}",
                                                "previous": f"{old:x}", "term": self.raft.term})
            else:
                s.log.warn("lost leader", **{"member-id": f"{s.member_id:x}", "previous": f"{old:x}"})

    async def _publish_loop(self) -> None:
        """Publish this member's name and client URLs through the log (etcd's publishV3)."""
        s = self.s
        while not self._published:
            try:
                await s.propose(raft_internal_pb2.InternalRaftRequest(
                    cluster_member_attr_set=membership_pb2.ClusterMemberAttrSetRequest(
                        member_ID=s.member_id,
                        member_attributes=membership_pb2.Attributes(
                            name=s.cfg.name, client_urls=list(s.cfg.advertise_client_urls)))))
                self._published = True
                s.log.info("published local member to cluster through raft", **{
                    "local-member-id": f"{s.member_id:x}", "cluster-id": f"{s.cluster_id:x}"})
            except errors.RPCError:
                await asyncio.sleep(0.2)

    # --- proposals and reads ---------------------------------------------------------
    async def propose(self, req: raft_internal_pb2.InternalRaftRequest, fut: asyncio.Future[Any]) -> Any:
        self.raft.propose(req.SerializeToString())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.request_timeout)
        except TimeoutError:
            raise errors.TIMEOUT from None

    async def linearizable_barrier(self) -> None:
        """Wait until this member has applied everything committed when the read arrived."""
        index = await self.raft.read_index(self.request_timeout)
        s = self.s
        deadline = time.monotonic() + self.request_timeout
        while s.applied_index < index:
            self._applied_event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.TIMEOUT
            try:
                await asyncio.wait_for(self._applied_event.wait(), remaining)
            except TimeoutError:
                raise errors.TIMEOUT from None

    # --- apply -----------------------------------------------------------------------
    def _apply_entries(self, entries: list[Entry]) -> None:
        s = self.s
        if len(entries) == 1 and entries[0].type == 1:  # ENTRY_CONF_CHANGE
            self._apply_conf_change(entries[0])
        else:
            batch = []
            for e in entries:
                if e.index <= s.applied_index:
                    continue  # already in the backend (replayed after a restart)
                req = raft_internal_pb2.InternalRaftRequest()
                if e.data:
                    req.ParseFromString(e.data)
                batch.append((e.index, req))
            results = s._apply_batch(batch, notify=True) if batch else []
            for (_, req), result in zip(batch, results, strict=True):
                fut = s._waiters.pop(req.header.ID, None) if req.header.ID else None
                if fut is None or fut.done():
                    continue
                if isinstance(result, errors.RPCError):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
        self._applied_event.set()
        if s.applied_index - self._snap_index >= self.snapshot_count:
            self._snapshot()

    # --- snapshots ---------------------------------------------------------------------
    def _snapshot(self) -> None:
        """Every --snapshot-count applied entries: snapshot, compact the log, drop old WAL segments."""
        s = self.s
        index = s.applied_index
        s.backend.sync()  # the backend must hold `index` durably before the log before it goes
        compacted = self.raft.take_snapshot(index, self.catchup_entries)
        self._snap_index = index
        s.log.info("saved snapshot", **{"snapshot-index": index, "compact-index": compacted})

    def _fill_snapshot(self, m: Any) -> Any:
        """Give an outgoing MsgSnap the sender's whole backend (etcd's merged snapshot message)."""
        import dataclasses

        from kvetch.raft import SnapshotMetadata

        s = self.s
        # The copy is taken synchronously on the loop, so it holds exactly `applied_index`; the
        # metadata is rewritten to match, with the current membership (a member that joined after
        # the last stored snapshot must find itself in it).
        index = s.applied_index
        snap = s.backend.snapshot()
        try:
            with open(snap.path, "rb") as fh:
                data = fh.read(snap.size)
        finally:
            snap.close()
        meta = SnapshotMetadata(conf_state=self.raft.node.status().conf_state, index=index,
                                term=self.raft.storage.term(index))
        s.log.info("sending database snapshot", **{"to": f"{m.to:x}", "size": len(data),
                                                    "snapshot-index": index})
        return dataclasses.replace(m, snapshot=dataclasses.replace(m.snapshot, data=data, metadata=meta))

    def _install_snapshot(self, snap: Any) -> None:
        """Replace this member's backend by the leader's copy (the follower was too far behind)."""
        import os
        import tempfile

        s = self.s
        fd, path = tempfile.mkstemp(prefix="incoming-snapshot.", dir=s.data_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(snap.data)
            s.store.close()
            s.backend.restore(path)
        finally:
            if os.path.exists(path):
                os.unlink(path)
        s.store.reload()
        s.applied_index, _ = s.storage.consistent_index()
        s.lessor.leases.clear()
        s._restore_leases()
        s.alarms = type(s.alarms)(s.storage.load_alarms())
        s._load_membership()
        s.hub.resync_all()
        self._snap_index = snap.metadata.index
        s.log.info("restored backend from snapshot", **{"applied-index": s.applied_index,
                                                        "revision": s.store.rev})

    def _apply_conf_change(self, e: Entry) -> None:
        s = self.s
        cc = decode_conf_change(e.data)
        self.raft.node.apply_conf_change(cc)
        if e.index <= s.applied_index:
            # Replayed after a restart: Raft needed it, the backend already has its effect.
            if cc.node_id in s.members and cc.type != CONF_REMOVE_NODE:
                self.transport.set_peer(cc.node_id, s.members[cc.node_id].peer_urls)
            return
        record = json.loads(cc.context) if cc.context else None
        if cc.type in (CONF_ADD_NODE, CONF_ADD_LEARNER_NODE):
            existing = s.members.get(cc.node_id)
            if record is not None:
                from kvetch.server.core import MemberInfo

                m = MemberInfo(int(record["id"]), record.get("name", ""), record["peerURLs"],
                               record.get("clientURLs", []), cc.type == CONF_ADD_LEARNER_NODE)
                if existing is not None and cc.type == CONF_ADD_NODE:
                    m.name, m.client_urls = existing.name or m.name, existing.client_urls or m.client_urls
                s.members[m.id] = m
            elif existing is not None and cc.type == CONF_ADD_NODE:
                existing.is_learner = False
            if cc.node_id in s.members:
                self.transport.set_peer(cc.node_id, s.members[cc.node_id].peer_urls)
        elif cc.type == CONF_REMOVE_NODE:
            s.members.pop(cc.node_id, None)
            s.removed_members.add(cc.node_id)
            asyncio.get_running_loop().create_task(self.transport.remove_peer(cc.node_id))
            if cc.node_id == s.member_id:
                s.log.warn("the local member has been permanently removed from the cluster")
        elif cc.type == CONF_UPDATE_NODE and record is not None and cc.node_id in s.members:
            s.members[cc.node_id].peer_urls = record["peerURLs"]
            self.transport.set_peer(cc.node_id, record["peerURLs"])
        with s.storage.write() as tx:
            tx.set_consistent_index(e.index, self.raft.term)
            s._persist_membership(tx)
        s.applied_index = e.index
        fut = self._conf_waiters.pop(cc.id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _conf_change(self, cc: ConfChange) -> None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        cc.id = next(self.s._req_ids)
        self._conf_waiters[cc.id] = fut
        try:
            self.raft.propose_conf_change(cc)
            await asyncio.wait_for(fut, self.request_timeout)
        except TimeoutError:
            raise errors.TIMEOUT from None
        finally:
            self._conf_waiters.pop(cc.id, None)

    # --- membership API ---------------------------------------------------------------
    def _started_voters(self) -> int:
        """Voters the leader heard from recently (etcd's numConnectedSince, from Raft progress)."""
        s = self.s
        progress = self.raft.status().progress
        return sum(1 for m in s.members.values() if not m.is_learner
                   and (m.id == s.member_id or (m.id in progress and progress[m.id].recent_active)))

    async def _forward(self, method: str, r: Any) -> Any:
        """Send a membership request to the leader, which alone can judge it (as etcd forwards)."""
        async with aio.insecure_channel(await self._leader_client_url()) as ch:
            stub = rpc_pb2_grpc.ClusterStub(ch)
            try:
                resp = await getattr(stub, method)(r, timeout=self.request_timeout)
            except grpc.RpcError as exc:
                raise errors.RPCError(exc.code(), exc.details() or "") from None  # type: ignore[attr-defined]
        resp.header.Clear()
        return self.s.fill(resp)

    def _members_pb(self) -> list[rpc_pb2.Member]:
        return [m.to_pb() for m in sorted(self.s.members.values(), key=lambda m: m.id)]

    async def member_add(self, r: rpc_pb2.MemberAddRequest) -> rpc_pb2.MemberAddResponse:
        from kvetch.server.core import MemberInfo

        s = self.s
        if not self.is_leader():
            return await self._forward("MemberAdd", r)
        if not r.peerURLs:
            raise errors.MEMBER_BAD_URLS
        existing = {u for m in s.members.values() for u in m.peer_urls}
        if any(u in existing for u in r.peerURLs):
            raise errors.PEER_URL_EXIST
        if not r.isLearner:
            voters = sum(1 for m in s.members.values() if not m.is_learner)
            # etcd's special case: a second voter may join a one-member cluster
            if not (voters == 1 and self._started_voters() == 1) and \
                    self._started_voters() < (voters + 1) // 2 + 1:
                raise errors.MEMBER_NOT_ENOUGH_STARTED
        mid = ids.member_id(r.peerURLs, s.cfg.initial_cluster_token, int(time.time()))
        if mid in s.members:
            raise errors.MEMBER_EXIST
        m = MemberInfo(mid, "", list(r.peerURLs), [], r.isLearner)
        cc = ConfChange(type=CONF_ADD_LEARNER_NODE if r.isLearner else CONF_ADD_NODE, node_id=mid,
                        context=member_record(m))
        await self._conf_change(cc)
        return s.fill(rpc_pb2.MemberAddResponse(member=m.to_pb(), members=self._members_pb()))

    async def member_remove(self, r: rpc_pb2.MemberRemoveRequest) -> rpc_pb2.MemberRemoveResponse:
        s = self.s
        if not self.is_leader():
            return await self._forward("MemberRemove", r)
        m = s.members.get(r.ID)
        if m is None:
            raise errors.MEMBER_NOT_FOUND
        if not m.is_learner:
            voters = sum(1 for x in s.members.values() if not x.is_learner)
            started = self._started_voters() - (1 if (s.member_id == r.ID or self.transport.is_active(r.ID)) else 0)
            if started < (voters - 1) // 2 + 1:
                raise errors.MEMBER_NOT_ENOUGH_STARTED
        await self._conf_change(ConfChange(type=CONF_REMOVE_NODE, node_id=r.ID))
        return s.fill(rpc_pb2.MemberRemoveResponse(members=self._members_pb()))

    async def member_update(self, r: rpc_pb2.MemberUpdateRequest) -> rpc_pb2.MemberUpdateResponse:
        s = self.s
        m = s.members.get(r.ID)
        if m is None:
            raise errors.MEMBER_NOT_FOUND
        others = {u for x in s.members.values() if x.id != r.ID for u in x.peer_urls}
        if any(u in others for u in r.peerURLs):
            raise errors.PEER_URL_EXIST
        rec = json.dumps({"id": m.id, "name": m.name, "peerURLs": list(r.peerURLs),
                          "clientURLs": m.client_urls, "isLearner": m.is_learner}).encode()
        await self._conf_change(ConfChange(type=CONF_UPDATE_NODE, node_id=r.ID, context=rec))
        return s.fill(rpc_pb2.MemberUpdateResponse(members=self._members_pb()))

    async def member_promote(self, r: rpc_pb2.MemberPromoteRequest) -> rpc_pb2.MemberPromoteResponse:
        s = self.s
        m = s.members.get(r.ID)
        if m is None:
            raise errors.MEMBER_NOT_FOUND
        if not m.is_learner:
            raise errors.MEMBER_NOT_LEARNER
        if not self.is_leader():
            # Only the leader knows the learner's progress: forward, as etcd does.
            async with aio.insecure_channel(await self._leader_client_url()) as ch:
                try:
                    resp = await rpc_pb2_grpc.ClusterStub(ch).MemberPromote(r, timeout=self.request_timeout)
                except grpc.RpcError as exc:
                    raise errors.RPCError(exc.code(), exc.details() or "") from None  # type: ignore[attr-defined]
            resp.header.Clear()
            return s.fill(resp)
        if not self.raft.node.is_learner_ready(r.ID) if hasattr(self.raft.node, "is_learner_ready") \
                else not self._learner_ready(r.ID):
            raise errors.LEARNER_NOT_READY
        await self._conf_change(ConfChange(type=CONF_ADD_NODE, node_id=r.ID))
        return s.fill(rpc_pb2.MemberPromoteResponse(members=self._members_pb()))

    def _learner_ready(self, member_id: int) -> bool:
        st = self.raft.status()
        pr = st.progress.get(member_id)
        leader = st.progress.get(self.s.member_id)
        if pr is None or leader is None:
            return False
        return pr.match >= 0.9 * leader.match

    async def move_leader(self, target: int) -> None:
        s = self.s
        if not self.is_leader():
            raise errors.NOT_LEADER
        m = s.members.get(target)
        if m is None or m.is_learner:
            raise errors.BAD_LEADER_TRANSFEREE
        if target == s.member_id:
            return
        self.raft.transfer_leader(target)
        deadline = time.monotonic() + self.request_timeout
        while self.raft.leader != target:
            if time.monotonic() > deadline:
                raise errors.TIMEOUT_DUE_TO_LEADER_FAIL
            await asyncio.sleep(0.02)

    # --- forwarding to the leader -----------------------------------------------------
    async def _leader_client_url(self) -> str:
        """The leader's client address; waits (bounded) for a leader and its published URLs."""
        deadline = time.monotonic() + self.request_timeout
        while True:
            leader = self.s.members.get(self.raft.leader)
            if leader is not None and leader.client_urls:
                return grpc_target(leader.client_urls[0])
            if time.monotonic() > deadline:
                raise errors.NO_LEADER
            await asyncio.sleep(0.05)

    async def forward_keepalive(self, lease_id: int) -> int:
        async with aio.insecure_channel(await self._leader_client_url()) as ch:
            stub = rpc_pb2_grpc.LeaseStub(ch)
            call = stub.LeaseKeepAlive(iter([rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)]),
                                       timeout=self.request_timeout)
            try:
                async for resp in call:
                    return int(resp.TTL)
            except grpc.RpcError as exc:
                raise errors.RPCError(exc.code(), exc.details() or "") from None  # type: ignore[attr-defined]
        return 0

    async def forward_time_to_live(self, r: rpc_pb2.LeaseTimeToLiveRequest) -> rpc_pb2.LeaseTimeToLiveResponse:
        async with aio.insecure_channel(await self._leader_client_url()) as ch:
            try:
                return await rpc_pb2_grpc.LeaseStub(ch).LeaseTimeToLive(r, timeout=self.request_timeout)
            except grpc.RpcError as exc:
                raise errors.RPCError(exc.code(), exc.details() or "") from None  # type: ignore[attr-defined]
