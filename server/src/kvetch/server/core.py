"""The member: storage, commit pipeline, apply loop, leases, watches and maintenance.

Every mutation is an ``InternalRaftRequest`` proposed to the commit pipeline:
it is appended to the WAL, made durable with one fsync shared by every
proposal waiting at that moment (group commit), then applied in log order by
the apply loop, which writes the MVCC changes and the consistent index in one
backend transaction and wakes the proposer with the result. The commit rule is
the only part a replicated member changes (Raft decides when an entry is
committed); the apply path stays the same.

Reads are served from backend read transactions and never wait for writers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvetch.api.etcdserverpb import raft_internal_pb2, rpc_pb2
from kvetch.api.leasepb import lease_pb2
from kvetch.config import DEFAULT_QUOTA_BACKEND_BYTES, MAX_QUOTA_BACKEND_BYTES, Config
from kvetch.server import errors, ids, kv_apply, validate, versions
from kvetch.server.alarms import Alarms
from kvetch.server.lessor import Lessor
from kvetch.server.persist import open_storage
from kvetch.server.watch import WatchHub
from kvetch.version import CLUSTER_VERSION, __version__, major_minor

InternalRaftRequest = raft_internal_pb2.InternalRaftRequest
AlarmType = rpc_pb2.AlarmType

#: Proposals applied per backend transaction at most.
MAX_APPLY_BATCH = 512
#: Approximate per-request overhead counted against the backend quota (etcd's kvOverhead).
KV_OVERHEAD = 256

#: Minor that introduced the batched lease revocation entry (gated on the cluster version).
LEASE_REVOKE_BATCH_SINCE = "0.2"

META_CLUSTER_VERSION = b"kvetch_cluster_version"
META_STORAGE_VERSION = b"storageVersion"
META_DOWNGRADE = b"kvetch_downgrade"


@dataclass
class MemberInfo:
    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]
    is_learner: bool = False

    def to_pb(self) -> rpc_pb2.Member:
        return rpc_pb2.Member(ID=self.id, name=self.name, peerURLs=self.peer_urls,
                              clientURLs=self.client_urls, isLearner=self.is_learner)


class _LeaseHooks:
    """Lease attachment hooks handed to the KV apply functions."""

    def __init__(self, lessor: Lessor) -> None:
        self.lessor = lessor

    def exists(self, lease_id: int) -> bool:
        return self.lessor.lookup(lease_id) is not None

    def attach(self, lease_id: int, key: bytes) -> None:
        self.lessor.attach(lease_id, key)

    def detach(self, lease_id: int, key: bytes) -> None:
        self.lessor.detach(lease_id, key)


class KvetchServer:
    """One kvetch member (single-member commit rule for now)."""

    def __init__(self, cfg: Config, log: Any) -> None:
        self.cfg = cfg
        self.log = log
        self.metrics_hook: Any = None  # set by the RPC layer: callable(event_name, **values)
        self.data_dir = Path(cfg.resolved_data_dir())
        self.quota = cfg.quota_backend_bytes or DEFAULT_QUOTA_BACKEND_BYTES
        self._db_size = 0
        if self.quota > MAX_QUOTA_BACKEND_BYTES:
            log.warn("quota exceeds the maximum value", **{"quota-size-bytes": self.quota,
                                                            "quota-maximum-size-bytes": MAX_QUOTA_BACKEND_BYTES})
        self.storage = open_storage(self.data_dir, map_size=max(16 << 30, 2 * self.quota),
                                    unsafe_no_fsync=cfg.unsafe_no_fsync, wal_dir=cfg.wal_dir or None,
                                    log=log)
        self.backend = self.storage.backend
        self.store = self.storage.kv
        self._db_size = self.backend.size()
        self.wal = self.storage.wal
        # Version checks come first: a refused binary must leave the data dir untouched.
        self.downgrade: dict[str, Any] = json.loads(self.storage.meta_get(META_DOWNGRADE, b"{}") or b"{}")
        stored_cluster_version = self.storage.meta_get(META_CLUSTER_VERSION, b"").decode()
        stored_storage_version = self.storage.meta_get(META_STORAGE_VERSION, b"").decode()
        try:
            versions.check_can_start(stored_cluster_version, stored_storage_version,
                                     self.downgrade.get("target") if self.downgrade.get("enabled") else None)
        except versions.VersionRefused:
            self.storage.close()
            raise
        self.cluster_version = stored_cluster_version

        cluster = ids.parse_initial_cluster(cfg.initial_cluster)
        token = cfg.initial_cluster_token
        self.members: dict[int, MemberInfo] = {}
        for name, urls in cluster.items():
            mid = ids.member_id(urls, token)
            self.members[mid] = MemberInfo(mid, name, list(urls), [])
        my_urls = cluster.get(cfg.name, cfg.initial_advertise_peer_urls)
        self.member_id = ids.member_id(my_urls, token)
        if self.member_id not in self.members:
            self.members[self.member_id] = MemberInfo(self.member_id, cfg.name, list(my_urls), [])
        self.cluster_id = ids.cluster_id(self.members)
        self.members[self.member_id].client_urls = list(cfg.advertise_client_urls)
        self.term = 1
        self._load_membership()
        if (cfg.initial_cluster_state == "existing" and not self.storage.load_members_were_stored
                and self.wal.last_index() == 0):
            self._join_existing(cluster, my_urls)

        min_ttl = max(1, -(-(3 * (cfg.election_timeout // cfg.heartbeat_interval) // 2)
                           * cfg.heartbeat_interval // 1000))
        self.lessor = Lessor(min_ttl)
        self.lease_hooks = _LeaseHooks(self.lessor)
        self.alarms = Alarms(self.storage.load_alarms())
        self.hub = WatchHub(self.store, self.header, cfg.max_request_bytes)



        self.applied_index, _ = self.storage.consistent_index()
        self.last_index = self.applied_index
        if not self.storage_version_stored():
            self.storage.meta_put(META_STORAGE_VERSION, CLUSTER_VERSION.encode())
        self.removed_members: set[int] = set()
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._req_ids = itertools.count(random.getrandbits(40) << 16)
        self._restore_leases()
        self.cluster: Any = None
        replicated = self._replicated_mode()
        if not replicated:
            self._decide_alone()
        if replicated:
            from kvetch.server.cluster import META_RAFT_MODE, Cluster

            self.storage.meta_put(META_RAFT_MODE, b"1")
            fresh = self.applied_index == 0 and self.wal.last_index() == 0
            self.cluster = Cluster(self, new_cluster=fresh and cfg.initial_cluster_state == "new")
        else:
            self._replay_wal()

        self._pending: list[tuple[InternalRaftRequest, asyncio.Future[Any] | None]] = []
        self._pending_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._fsync_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wal")
        self._compaction_task: asyncio.Task[None] | None = None
        self._batch_notifications: list[tuple[int, list[Any]]] = []
        self._stopping = False

    # ------------------------------------------------------------------ start/stop
    def _decide_alone(self) -> None:
        """A lone member is all the members: it sets the cluster version and ends a downgrade itself."""
        target = self.downgrade.get("target") if self.downgrade.get("enabled") else None
        decided = versions.decide(self.cluster_version, [__version__], target)
        if decided is not None:
            self.cluster_version = decided
        if target and versions.parse_mm(target) == versions.parse_mm(__version__):
            self.downgrade = {}
            self.storage.meta_put(META_DOWNGRADE, b"{}")
            self.log.info("the cluster has been downgraded", **{"cluster-version": self.cluster_version})
        if decided is not None:
            self.storage.meta_put(META_CLUSTER_VERSION, self.cluster_version.encode())
            self.storage.meta_put(META_STORAGE_VERSION, self.cluster_version.encode())

    def _replicated_mode(self) -> bool:
        """Raft-replicated unless this is (and always was) a lone member of a new cluster."""
        from kvetch.server.cluster import META_RAFT_MODE

        if self.storage.meta_get(META_RAFT_MODE, b"") == b"1":
            return True
        if self.applied_index > 0 or self.wal.last_index() > 0:
            return False
        return len(self.members) > 1 or self.cfg.initial_cluster_state == "existing"

    def _load_membership(self) -> None:
        stored = self.storage.load_members()
        if stored:
            self.members = {}
            for raw in stored:
                m = json.loads(raw)
                self.members[int(m["id"])] = MemberInfo(int(m["id"]), m["name"], m["peerURLs"],
                                                        m.get("clientURLs", []), m.get("isLearner", False))
            if self.member_id in self.members:
                self.members[self.member_id].client_urls = list(self.cfg.advertise_client_urls)
                self.members[self.member_id].name = self.cfg.name
            self.cluster_id = int(self.storage.meta_get(b"kvetch_cluster_id", b"0") or 0) or self.cluster_id
        self._persist_membership()

    def _join_existing(self, cluster: dict[str, list[str]], my_urls: list[str]) -> None:
        """Learn the cluster ID and our member ID (given by MemberAdd) from the running members."""
        from kvetch.peer.transport import fetch_members

        others = [u for name, urls in cluster.items() if name != self.cfg.name for u in urls]
        info = fetch_members(others)
        self.cluster_id = int(info["cluster_id"])
        self.members = {}
        for rec in info["members"]:
            m = MemberInfo(int(rec["id"]), rec.get("name", ""), rec["peerURLs"], rec.get("clientURLs", []),
                           rec.get("isLearner", False))
            self.members[m.id] = m
        mine = [m for m in self.members.values() if set(m.peer_urls) & set(my_urls)]
        if not mine:
            raise SystemExit(f"kvetch: member with peer URLs {my_urls} has not been added to the cluster "
                             "(add it with `member add` first)")
        self.member_id = mine[0].id
        self.members[self.member_id].name = self.cfg.name
        self.members[self.member_id].client_urls = list(self.cfg.advertise_client_urls)
        self._persist_membership()

    def _persist_membership(self, tx: Any = None) -> None:
        """Store the member records (inside the apply transaction ``tx`` when given)."""
        records = {
            f"{m.id:x}": json.dumps({"id": m.id, "name": m.name, "peerURLs": m.peer_urls,
                                     "clientURLs": m.client_urls, "isLearner": m.is_learner})
            for m in self.members.values()
        }
        if tx is not None:
            tx.save_members(records)
            tx.meta_put(b"kvetch_cluster_id", str(self.cluster_id).encode())
            return
        self.storage.save_members(records)
        self.storage.meta_put(b"kvetch_cluster_id", str(self.cluster_id).encode())

    def _restore_leases(self) -> None:
        for rec in self.storage.load_leases():
            self.lessor.restore(rec.ID, rec.TTL, rec.RemainingTTL)
        for lease_id, key in self.storage.lease_keys():
            self.lessor.attach(lease_id, key)

    def _replay_wal(self) -> None:
        replayed = 0
        batch: list[tuple[int, InternalRaftRequest]] = []
        for index, _term, data in self.wal.entries_after(self.applied_index):
            req = InternalRaftRequest()
            req.ParseFromString(data)
            batch.append((index, req))
            if len(batch) >= MAX_APPLY_BATCH:
                self._apply_batch(batch, notify=False)
                replayed += len(batch)
                batch = []
        if batch:
            self._apply_batch(batch, notify=False)
            replayed += len(batch)
        self.last_index = max(self.last_index, self.wal.last_index())
        self.wal.release_contents()
        if self.store.compaction_pending:
            self.store.run_compaction()
        if replayed:
            self.log.info("replayed WAL entries", entries=replayed, **{"applied-index": self.applied_index})

    async def start(self, peer_listen: list[tuple[str, int]] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._peer_listen = list(peer_listen or [])
        self._commit_lock = asyncio.Lock()
        self._pending_event = asyncio.Event()
        self.hub.start()
        self._tasks = []
        if self.cluster is not None:
            await self.cluster.start(peer_listen or [])
        else:
            self.lessor.promote()
            self._tasks.append(loop.create_task(self._commit_loop(), name="commit"))
        self._tasks += [
            loop.create_task(self._lease_expiry_loop(), name="lease-expiry"),
            loop.create_task(self._lease_checkpoint_loop(), name="lease-checkpoint"),
            loop.create_task(self._backend_sync_loop(), name="backend-sync"),
            loop.create_task(self._progress_loop(), name="watch-progress"),
        ]
        compactor = self._auto_compaction_loop()
        if compactor is not None:
            self._tasks.append(loop.create_task(compactor, name="auto-compaction"))
        self.log.info("kvetch server started", **{
            "member-id": f"{self.member_id:x}", "cluster-id": f"{self.cluster_id:x}",
            "data-dir": str(self.data_dir), "server-version": __version__,
            "cluster-version": self.cluster_version,
        })

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._checkpoint_all_leases()
        await self.hub.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for _, fut in self._pending:
            if fut is not None and not fut.done():
                fut.set_exception(errors.STOPPED)
        self._pending.clear()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(errors.STOPPED)
        self._fsync_pool.shutdown(wait=True)
        self.storage.close()
        self.log.info("kvetch server stopped", **{"member-id": f"{self.member_id:x}"})

    # ------------------------------------------------------------------ headers
    def is_learner(self) -> bool:
        me = self.members.get(self.member_id)
        return me is not None and me.is_learner

    @property
    def raft_term(self) -> int:
        return self.cluster.term if self.cluster is not None else self.term

    def header(self, revision: int = 0) -> rpc_pb2.ResponseHeader:
        return rpc_pb2.ResponseHeader(cluster_id=self.cluster_id, member_id=self.member_id,
                                      revision=revision, raft_term=self.raft_term)

    def fill(self, resp: Any) -> Any:
        h = resp.header
        h.cluster_id = self.cluster_id
        h.member_id = self.member_id
        h.raft_term = self.raft_term
        if h.revision == 0:
            h.revision = self.store.rev
        return resp

    # ------------------------------------------------------------------ proposals
    async def propose(self, req: InternalRaftRequest) -> Any:
        if self._stopping or self._pending_event is None:
            raise errors.STOPPED
        req.header.ID = next(self._req_ids)
        if req.ByteSize() > self.cfg.max_request_bytes:
            raise errors.REQUEST_TOO_LARGE
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.cluster is not None:
            self._waiters[req.header.ID] = fut
            try:
                return await self.cluster.propose(req, fut)
            finally:
                self._waiters.pop(req.header.ID, None)
        self._pending.append((req, fut))
        self._pending_event.set()
        return await fut

    def _propose_nowait(self, req: InternalRaftRequest) -> None:
        if self._stopping or self._pending_event is None:
            return
        req.header.ID = next(self._req_ids)
        if self.cluster is not None:
            with contextlib.suppress(errors.RPCError):  # no leader: the periodic caller retries
                self.cluster.raft.propose(req.SerializeToString())
            return
        self._pending.append((req, None))
        self._pending_event.set()

    async def _commit_loop(self) -> None:
        assert self._pending_event is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            while self._pending:
                async with self._commit_lock:
                    await self._commit_batch(loop)

    async def _commit_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """One group-commit cycle: WAL write + fsync of every waiting proposal, then apply."""
        batch = self._pending[:MAX_APPLY_BATCH]
        del self._pending[:MAX_APPLY_BATCH]
        records = []
        entries: list[tuple[int, InternalRaftRequest]] = []
        for req, _ in batch:
            self.last_index += 1
            records.append((self.last_index, self.term, req.SerializeToString()))
            entries.append((self.last_index, req))
        started = time.perf_counter()
        # All WAL I/O happens on the one WAL thread, so appends, fsyncs and
        # segment releases never race; the loop keeps serving meanwhile.
        await loop.run_in_executor(self._fsync_pool, self._wal_write, records)
        self._observe("wal_fsync", seconds=time.perf_counter() - started)
        results = self._apply_batch(entries, notify=True)
        for (_, fut), result in zip(batch, results, strict=True):
            if fut is None or fut.done():
                continue
            if isinstance(result, errors.RPCError):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    def _wal_write(self, records: list[tuple[int, int, bytes]]) -> None:
        self.wal.append(records)
        self.wal.sync()

    def _observe(self, event: str, **values: Any) -> None:
        if self.metrics_hook is not None:
            self.metrics_hook(event, **values)

    # ------------------------------------------------------------------ apply
    def _apply_batch(self, entries: list[tuple[int, InternalRaftRequest]], notify: bool) -> list[Any]:
        results: list[Any] = []
        notifications: list[tuple[int, list[Any]]] = []
        self._batch_notifications = notifications
        started = time.perf_counter()
        compacted = False
        with self.storage.write() as tx:
            for index, req in entries:
                try:
                    result, rev, events = self._apply_one(tx, req)
                except errors.RPCError as err:
                    result, rev, events = err, 0, []
                results.append(result)
                if events:
                    notifications.append((rev, events))
                self.applied_index = index
            tx.set_consistent_index(self.applied_index, self.raft_term)
            compacted = tx.compacted
        if compacted:
            self._start_physical_compaction()
        took = time.perf_counter() - started
        self._db_size = self.backend.size()  # one stat per batch, not per request
        self._observe("apply", entries=len(entries), seconds=took)
        if took > self.cfg.experimental_warning_apply_duration:
            # etcd's expensive-request warning, for the batch that was slow
            self.log.warn("apply request took too long", took=f"{took:.6f}s",
                          **{"expected-duration": f"{self.cfg.experimental_warning_apply_duration}s",
                             "entries": len(entries)})
        if notify:
            for rev, events in notifications:
                self.hub.notify(rev, events)
        # Raise NOSPACE once a write found the quota exceeded (etcd does the same after apply).
        if any(r is errors.NO_SPACE for r in results) and not self.alarms.has(AlarmType.NOSPACE):
            self._propose_nowait(InternalRaftRequest(alarm=rpc_pb2.AlarmRequest(
                action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=self.member_id, alarm=AlarmType.NOSPACE)))
        return results

    def _apply_one(self, tx: Any, req: InternalRaftRequest) -> tuple[Any, int, list[Any]]:
        which = _request_kind(req)
        if which == "unknown" and not req.ByteSize():
            return None, 0, []  # a new leader's empty entry
        capped = self.alarms.has(AlarmType.NOSPACE)
        if self.alarms.has(AlarmType.CORRUPT) and which in ("put", "delete_range", "txn", "compaction",
                                                             "lease_grant", "lease_revoke"):
            raise errors.CORRUPT
        if which == "put":
            if capped:
                raise errors.NO_SPACE
            w = tx.kv_writer()
            kv_apply.check_put_in(w, req.put, self.lease_hooks)
            resp = kv_apply.apply_put(w, req.put, self.lease_hooks)
            rev, events = w.end()
            return resp, rev, events
        if which == "delete_range":
            w = tx.kv_writer()
            resp = kv_apply.apply_delete(w, req.delete_range, self.lease_hooks)
            rev, events = w.end()
            return resp, rev, events
        if which == "txn":
            return self._apply_txn(tx, req.txn, capped)
        if which == "compaction":
            return self._apply_compaction(tx, req.compaction), 0, []
        if which == "lease_grant":
            if capped:
                raise errors.NO_SPACE
            lease = self.lessor.grant(req.lease_grant.ID, req.lease_grant.TTL)
            tx.put_lease(lease_pb2.Lease(ID=lease.id, TTL=lease.ttl))
            return rpc_pb2.LeaseGrantResponse(header=self.header(), ID=lease.id, TTL=lease.ttl), 0, []
        if which == "lease_revoke":
            return self._apply_lease_revoke(tx, req.lease_revoke.ID)
        if which == "kvetch_lease_revoke_batch":
            # 0.2 feature: each lease still gets its own revision, in the order given.
            rev = 0
            for lease_id in req.kvetch_lease_revoke_batch.IDs:
                if self.lessor.lookup(lease_id) is None:
                    continue  # revoked meanwhile
                _, r, evs = self._apply_lease_revoke(tx, lease_id)
                if evs:
                    # one notification per revision keeps watch responses per revision
                    self._batch_notifications.append((r, evs))
                rev = r or rev
            return None, rev, []
        if which == "lease_checkpoint":
            for cp in req.lease_checkpoint.checkpoints:
                checkpointed = self.lessor.checkpoint(cp.ID, cp.remaining_TTL)
                if checkpointed is not None:
                    tx.put_lease(lease_pb2.Lease(ID=checkpointed.id, TTL=checkpointed.ttl,
                                                 RemainingTTL=checkpointed.remaining_ttl))
            return rpc_pb2.LeaseCheckpointResponse(header=self.header()), 0, []
        if which == "alarm":
            return self._apply_alarm(tx, req.alarm), 0, []
        if which == "cluster_version_set":
            old = self.cluster_version
            self.cluster_version = major_minor(req.cluster_version_set.ver + ".0")
            tx.meta_put(META_CLUSTER_VERSION, self.cluster_version.encode())
            # storage follows the cluster version (migrations are one minor at a time; the
            # schema of 0.1 and 0.2 only differs in the version record itself)
            tx.meta_put(META_STORAGE_VERSION, self.cluster_version.encode())
            if old != self.cluster_version:
                self.log.info("updated cluster version", **{"from": old or "not_decided",
                                                            "to": self.cluster_version})
                self._observe("cluster_version", version=self.cluster_version)
            return None, 0, []
        if which == "cluster_member_attr_set":
            a = req.cluster_member_attr_set
            member = self.members.get(a.member_ID)
            if member is not None:
                member.name = a.member_attributes.name
                member.client_urls = list(a.member_attributes.client_urls)
                self._persist_membership(tx)
            return None, 0, []
        if which == "downgrade_info_set":
            d = req.downgrade_info_set
            self.downgrade = {"enabled": d.enabled, "target": d.ver} if d.enabled else {}
            tx.meta_put(META_DOWNGRADE, json.dumps(self.downgrade).encode())
            if d.enabled:
                # every member says so once it applied the decision (etcd 3.6 does the same)
                self.log.info("the server is ready to downgrade", **{
                    "target-version": d.ver, "server-version": __version__})
            return None, 0, []
        raise errors.RPCError(errors.Code.UNIMPLEMENTED, f"kvetch: cannot apply request kind {which!r}")

    def _apply_txn(self, tx: Any, t: rpc_pb2.TxnRequest, capped: bool) -> tuple[Any, int, list[Any]]:
        w = tx.kv_writer()
        path = kv_apply.txn_path(w, t)
        writes = not validate.is_txn_read_only(t)
        if writes and capped and _txn_has_puts(t, path):
            raise errors.NO_SPACE
        kv_apply.check_txn_requests(w, t, path, self.lease_hooks, writes, self.store.rev, self.store.compact_rev)
        resp = rpc_pb2.TxnResponse()
        resp.header.SetInParent()
        try:
            kv_apply.apply_txn_ops(w, t, path, self.lease_hooks, resp)
        except errors.RPCError as exc:
            # Checks run before any write; an error after writes would leave a half-applied
            # revision in the batch. Stop rather than corrupt (etcd panics in the same place).
            self.log.error("unexpected error during txn apply; stopping", error=exc.message)
            os._exit(2)
        rev, events = w.end()
        resp.header.revision = rev
        return resp, rev, events

    def _apply_compaction(self, tx: Any, c: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        tx.compact(c.revision)
        return rpc_pb2.CompactionResponse(header=rpc_pb2.ResponseHeader(revision=self.store.rev))

    def _start_physical_compaction(self) -> None:
        """Delete compacted revisions in the background (etcd's scheduled compaction)."""
        if self._compaction_task is not None and not self._compaction_task.done():
            return  # the running task loops until nothing is pending
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # replaying the WAL before the loop runs
            self.store.run_compaction()
            return

        async def run() -> None:
            while self.store.compaction_pending:
                started = time.perf_counter()
                await loop.run_in_executor(None, self.store.run_compaction)
                self.log.info("finished scheduled compaction", **{
                    "compact-revision": self.store.compact_rev,
                    "took": f"{time.perf_counter() - started:.6f}s"})
        self._compaction_task = loop.create_task(run(), name="compaction")

    async def wait_compaction(self) -> None:
        task = self._compaction_task
        if task is not None:
            await asyncio.shield(task)

    def _apply_lease_revoke(self, tx: Any, lease_id: int) -> tuple[Any, int, list[Any]]:
        lease = self.lessor.revoke(lease_id)
        w = tx.kv_writer()
        for key in sorted(lease.keys):
            w.delete_range(key, None)
        rev, events = w.end()
        tx.delete_lease(lease_id)
        return rpc_pb2.LeaseRevokeResponse(header=self.header()), rev, events

    def _apply_alarm(self, tx: Any, a: rpc_pb2.AlarmRequest) -> rpc_pb2.AlarmResponse:
        resp = rpc_pb2.AlarmResponse()
        if a.action == rpc_pb2.AlarmRequest.GET:
            resp.alarms.extend(self.alarms.get(a.alarm))
        elif a.action == rpc_pb2.AlarmRequest.ACTIVATE:
            rec = self.alarms.activate(a.memberID, a.alarm)
            if rec is not None:
                tx.put_alarm(rec)
                resp.alarms.append(rec)
                self.log.warn("alarm raised", alarm=AlarmType.Name(rec.alarm), **{"from": f"{rec.memberID:x}"})
        elif a.action == rpc_pb2.AlarmRequest.DEACTIVATE:
            rec = self.alarms.deactivate(a.memberID, a.alarm)
            if rec is not None:
                tx.delete_alarm(rec)
                resp.alarms.append(rec)
                self.log.warn("alarm disarmed", alarm=AlarmType.Name(rec.alarm), **{"from": f"{rec.memberID:x}"})
        return resp

    # ------------------------------------------------------------------ KV API
    def check_quota(self, cost: int) -> None:
        """Reject a write that would push the backend past its quota (and raise NOSPACE)."""
        if self._db_size + cost > self.quota:
            if not self.alarms.has(AlarmType.NOSPACE):
                self.log.warn("exceeded backend quota; raising alarm", **{"quota-size-bytes": self.quota})
                self._propose_nowait(InternalRaftRequest(alarm=rpc_pb2.AlarmRequest(
                    action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=self.member_id, alarm=AlarmType.NOSPACE)))
            raise errors.NO_SPACE
        if self.alarms.has(AlarmType.NOSPACE):
            raise errors.NO_SPACE

    async def linearizable_barrier(self) -> None:
        if self.cluster is not None:
            await self.cluster.linearizable_barrier()

    async def range(self, r: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse | bytes:
        """Range; plain ranges come back pre-encoded (bytes) from the stored KeyValues."""
        validate.check_range(r)
        if self.alarms.has(AlarmType.CORRUPT):
            raise errors.CORRUPT
        if not r.serializable:
            await self.linearizable_barrier()
        with self.store.read() as reader:
            if kv_apply.raw_range_eligible(r):
                return kv_apply.apply_range_raw(reader, r, self.header())
            resp = kv_apply.apply_range(reader, r)
        return self.fill(resp)

    async def put(self, r: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        validate.check_put(r)
        self.check_quota(KV_OVERHEAD + len(r.key) + len(r.value))
        resp = await self.propose(InternalRaftRequest(put=r))
        return self.fill(resp)

    async def delete_range(self, r: rpc_pb2.DeleteRangeRequest) -> rpc_pb2.DeleteRangeResponse:
        validate.check_delete(r)
        resp = await self.propose(InternalRaftRequest(delete_range=r))
        return self.fill(resp)

    async def txn(self, r: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        validate.check_txn(r, self.cfg.max_txn_ops)
        if validate.is_txn_read_only(r):
            if self.alarms.has(AlarmType.CORRUPT):
                raise errors.CORRUPT
            if not validate.is_txn_serializable(r):
                await self.linearizable_barrier()
            with self.store.read() as reader:
                path = kv_apply.txn_path(reader, r)
                kv_apply.check_txn_requests(reader, r, path, self.lease_hooks, False,
                                            self.store.rev, self.store.compact_rev)
                resp = rpc_pb2.TxnResponse()
                resp.header.SetInParent()
                kv_apply.apply_txn_ops(reader, r, path, self.lease_hooks, resp)
                resp.header.revision = reader.rev
            return self.fill(resp)
        cost = _txn_cost(r)
        if cost:
            self.check_quota(cost)
        resp = await self.propose(InternalRaftRequest(txn=r))
        return self.fill(resp)

    async def compact(self, r: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        if r.revision > self.store.rev:
            raise errors.FUTURE_REV
        if r.revision <= self.store.compact_rev:
            raise errors.COMPACTED  # compacting to the compact revision again is an error too
        resp = await self.propose(InternalRaftRequest(compaction=r))
        if r.physical:
            await self.wait_compaction()
        return self.fill(resp)

    # ------------------------------------------------------------------ leases
    async def lease_grant(self, r: rpc_pb2.LeaseGrantRequest) -> rpc_pb2.LeaseGrantResponse:
        while r.ID == 0:
            r.ID = next(self._req_ids) & ((1 << 63) - 1)
        self.check_quota(KV_OVERHEAD)
        resp = await self.propose(InternalRaftRequest(lease_grant=r))
        return self.fill(resp)

    async def lease_revoke(self, r: rpc_pb2.LeaseRevokeRequest) -> rpc_pb2.LeaseRevokeResponse:
        resp = await self.propose(InternalRaftRequest(lease_revoke=r))
        return self.fill(resp)

    async def lease_keepalive(self, lease_id: int) -> int:
        """Keep-alive from a client: renewed on the primary; followers forward to the leader."""
        if self.cluster is not None and not self.cluster.is_leader():
            return await self.cluster.forward_keepalive(lease_id)
        return self.lease_renew(lease_id)

    def lease_renew(self, lease_id: int) -> int:
        """Keep-alive: new TTL, or 0 when the lease does not exist (etcd's answer)."""
        try:
            lease = self.lessor.lookup(lease_id)
            had_checkpoint = lease is not None and lease.remaining_ttl > 0
            ttl = self.lessor.renew(lease_id)
        except errors.RPCError:
            return 0
        if had_checkpoint:
            self._propose_nowait(InternalRaftRequest(lease_checkpoint=rpc_pb2.LeaseCheckpointRequest(
                checkpoints=[rpc_pb2.LeaseCheckpoint(ID=lease_id, remaining_TTL=0)])))
        return ttl

    async def lease_time_to_live(self, r: rpc_pb2.LeaseTimeToLiveRequest) -> rpc_pb2.LeaseTimeToLiveResponse:
        if self.cluster is not None and not self.cluster.is_leader():
            resp = await self.cluster.forward_time_to_live(r)
            resp.header.Clear()
            return self.fill(resp)
        lease = self.lessor.lookup(r.ID)
        if lease is None:
            return self.fill(rpc_pb2.LeaseTimeToLiveResponse(ID=r.ID, TTL=-1))
        resp = rpc_pb2.LeaseTimeToLiveResponse(ID=r.ID, TTL=int(self.lessor.remaining(lease)), grantedTTL=lease.ttl)
        if r.keys:
            resp.keys.extend(sorted(lease.keys))
        return self.fill(resp)

    def lease_leases(self) -> rpc_pb2.LeaseLeasesResponse:
        resp = rpc_pb2.LeaseLeasesResponse(leases=[rpc_pb2.LeaseStatus(ID=i) for i in self.lessor.ids()])
        return self.fill(resp)

    def feature_enabled(self, since: str) -> bool:
        """Behaviour added in minor ``since`` is used only once the cluster version reaches it."""
        return bool(self.cluster_version) and versions.parse_mm(self.cluster_version) >= versions.parse_mm(since)

    async def _lease_expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            expired = self.lessor.expired()
            if not expired:
                continue
            batched = self.feature_enabled(LEASE_REVOKE_BATCH_SINCE)
            self.log.info("revoking expired leases", count=len(expired), batched=batched)
            if batched:
                self._propose_nowait(InternalRaftRequest(
                    kvetch_lease_revoke_batch=raft_internal_pb2.LeaseRevokeBatchRequest(IDs=expired)))
            else:
                for lease_id in expired:
                    self._propose_nowait(InternalRaftRequest(lease_revoke=rpc_pb2.LeaseRevokeRequest(ID=lease_id)))

    async def _lease_checkpoint_loop(self) -> None:
        if not self.cfg.experimental_enable_lease_checkpoint:
            return
        while True:
            await asyncio.sleep(5.0)
            due = self.lessor.checkpoints_due()  # empty unless this member is the primary
            if due:
                self._propose_nowait(InternalRaftRequest(lease_checkpoint=rpc_pb2.LeaseCheckpointRequest(
                    checkpoints=[rpc_pb2.LeaseCheckpoint(ID=i, remaining_TTL=ttl) for i, ttl in due])))

    def _checkpoint_all_leases(self) -> None:
        """On shutdown: persist every lease's remaining TTL directly (no proposal path left)."""
        due = self.lessor.checkpoints_due()
        if not due or not self.cfg.experimental_enable_lease_checkpoint:
            return
        try:
            with self.storage.write() as tx:
                for lease_id, ttl in due:
                    lease = self.lessor.lookup(lease_id)
                    if lease is not None:
                        tx.put_lease(lease_pb2.Lease(ID=lease.id, TTL=lease.ttl, RemainingTTL=ttl))
        except Exception as exc:  # shutting down: report, do not mask the stop
            self.log.warn("failed to checkpoint leases on stop", error=str(exc))

    # ------------------------------------------------------------------ background
    async def _backend_sync_loop(self) -> None:
        """Make applied state durable in the backend, then drop WAL segments it covers."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            index = self.applied_index
            await loop.run_in_executor(None, self.backend.sync)
            if self.cluster is None:
                # Replicated members keep their log (snapshots of the log are future work).
                await loop.run_in_executor(self._fsync_pool, self.wal.release_to, index)

    async def _progress_loop(self) -> None:
        interval = self.cfg.experimental_watch_progress_notify_interval
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            self.hub.progress_tick()

    def _auto_compaction_loop(self) -> Any:
        retention = self.cfg.auto_compaction_retention.strip()
        if retention in ("", "0"):
            return None
        if self.cfg.auto_compaction_mode == "revision":
            keep = int(retention)

            async def by_revision() -> None:
                while True:
                    await asyncio.sleep(min(300.0, max(1.0, keep / 1000)))
                    target = self.store.rev - keep
                    if target > max(0, self.store.compact_rev):
                        await self._auto_compact(target)
            return by_revision()
        from kvetch.config import _duration
        period = float(retention) * 3600 if retention.replace(".", "", 1).isdigit() else _duration(retention)
        step = max(1.0, period / 10)

        async def periodic() -> None:
            samples: list[tuple[float, int]] = []
            while True:
                samples.append((time.monotonic(), self.store.rev))
                cutoff = time.monotonic() - period
                old = [s for s in samples if s[0] <= cutoff]
                if old:
                    target = old[-1][1]
                    samples = [s for s in samples if s[0] > cutoff] + [old[-1]]
                    samples.sort()
                    if target > max(0, self.store.compact_rev):
                        await self._auto_compact(target)
                await asyncio.sleep(step)
        return periodic()

    async def _auto_compact(self, rev: int) -> None:
        try:
            await self.propose(InternalRaftRequest(compaction=rpc_pb2.CompactionRequest(revision=rev)))
            self.log.info("completed auto compaction", revision=rev)
        except errors.RPCError as err:
            self.log.warn("auto compaction failed", revision=rev, error=err.message)

    # ------------------------------------------------------------------ maintenance
    def status(self) -> rpc_pb2.StatusResponse:
        leader, raft_index, is_learner = self.member_id, self.last_index, False
        if self.cluster is not None:
            st = self.cluster.raft.status()
            leader, raft_index = self.cluster.leader, st.commit
            me = self.members.get(self.member_id)
            is_learner = bool(me and me.is_learner)
        resp = rpc_pb2.StatusResponse(
            version=__version__, dbSize=self.backend.size(), leader=leader,
            raftIndex=raft_index, raftTerm=self.raft_term, raftAppliedIndex=self.applied_index,
            dbSizeInUse=self.backend.size_in_use(), isLearner=is_learner,
            storageVersion=self.storage_version(), dbSizeQuota=self.quota,
        )
        resp.errors.extend(Alarms.describe(a) for a in self.alarms.get())
        if self.downgrade.get("enabled"):
            resp.downgradeInfo.enabled = True
            resp.downgradeInfo.targetVersion = self.downgrade.get("target", "")
        return self.fill(resp)

    def storage_version(self) -> str:
        return self.storage.meta_get(META_STORAGE_VERSION, b"").decode() or CLUSTER_VERSION

    def storage_version_stored(self) -> bool:
        return bool(self.storage.meta_get(META_STORAGE_VERSION, b""))

    async def alarm(self, r: rpc_pb2.AlarmRequest) -> rpc_pb2.AlarmResponse:
        if r.action == rpc_pb2.AlarmRequest.GET:
            return self.fill(rpc_pb2.AlarmResponse(alarms=self.alarms.get(r.alarm)))
        resp = await self.propose(InternalRaftRequest(alarm=r))
        return self.fill(resp)

    def defragment(self) -> rpc_pb2.DefragmentResponse:
        started = time.perf_counter()
        self.log.info("defragmenting", path=str(self.data_dir), **{"current-db-size-bytes": self.backend.size()})
        self.backend.defrag()
        self._db_size = self.backend.size()
        self.log.info("finished defragmenting directory", took=f"{time.perf_counter() - started:.3f}s",
                      **{"current-db-size-bytes": self.backend.size()})
        self._observe("defrag", seconds=time.perf_counter() - started)
        return rpc_pb2.DefragmentResponse()  # etcd 3.5 answers Defragment without a header

    def hash(self) -> rpc_pb2.HashResponse:
        return self.fill(rpc_pb2.HashResponse(hash=self.store.hash()))

    def hash_kv(self, r: rpc_pb2.HashKVRequest) -> rpc_pb2.HashKVResponse:
        h, compact_rev, hash_rev = self.store.hash_kv(r.revision)
        # hash_revision (etcd 3.6) is left unset: etcd 3.5 clients and differential tests compare 3.5 replies.
        del hash_rev
        return self.fill(rpc_pb2.HashKVResponse(hash=h, compact_revision=compact_rev))

    async def snapshot(self) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        """Maintenance.Snapshot: the backend copy then its sha256, as etcdctl expects."""
        loop = asyncio.get_running_loop()
        snap = await loop.run_in_executor(None, self.backend.snapshot)
        try:
            remaining = snap.size + 32
            for chunk in snap.chunks(sha256_trailer=True):
                remaining -= len(chunk)
                yield self.fill(rpc_pb2.SnapshotResponse(remaining_bytes=remaining, blob=chunk,
                                                         version=CLUSTER_VERSION + ".0"))
                await asyncio.sleep(0)
        finally:
            snap.close()

    async def move_leader(self, r: rpc_pb2.MoveLeaderRequest) -> rpc_pb2.MoveLeaderResponse:
        if self.cluster is not None:
            await self.cluster.move_leader(r.targetID)
        elif r.targetID != self.member_id:
            raise errors.BAD_LEADER_TRANSFEREE
        return self.fill(rpc_pb2.MoveLeaderResponse())

    # ------------------------------------------------------------------ cluster
    async def member_list(self, r: rpc_pb2.MemberListRequest) -> rpc_pb2.MemberListResponse:
        """Linearizable (etcd 3.5): served after a ReadIndex; fails without a quorum."""
        await self.linearizable_barrier()
        members = sorted(self.members.values(), key=lambda m: m.id)
        return self.fill(rpc_pb2.MemberListResponse(members=[m.to_pb() for m in members]))

    async def member_add(self, r: rpc_pb2.MemberAddRequest) -> rpc_pb2.MemberAddResponse:
        if self.cluster is None:
            self._member_add_single(r)  # etcd's argument checks first
            await self._become_replicated()
        assert self.cluster is not None
        return await self.cluster.member_add(r)

    async def _become_replicated(self) -> None:
        """Turn a lone member into a one-voter Raft cluster so that members can join.

        The single-member commit loop is drained and stopped; the Raft log starts at a
        snapshot of the applied state (index = applied index, membership = this member), so
        a joining member catches up by receiving the backend; proposals still queued are
        re-proposed through Raft.
        """
        from kvetch.raft import ConfState, HardState, MemoryStorage, Snapshot, SnapshotMetadata
        from kvetch.raft.codec import encode_conf_state
        from kvetch.server.cluster import META_RAFT_MODE, Cluster
        from kvetch.storage.wal import HardState as WalHardState
        from kvetch.storage.wal import SnapshotMarker

        async with self._commit_lock:  # no batch in flight past this point
            if self.cluster is not None:
                return
            for t in self._tasks:
                if t.get_name() == "commit":
                    t.cancel()
            index, term = self.applied_index, self.term
            cs = ConfState(voters=[self.member_id], learners=[])
            loop = asyncio.get_running_loop()

            def persist() -> None:
                self.wal.save_snapshot(SnapshotMarker(index, term, encode_conf_state(cs)))
                self.wal.append([], WalHardState(term, 0, index))
                self.wal.sync()
            await loop.run_in_executor(self._fsync_pool, persist)
            self.storage.meta_put(META_RAFT_MODE, b"1")
            st = MemoryStorage()
            st.apply_snapshot(Snapshot(metadata=SnapshotMetadata(conf_state=cs, index=index, term=term)))
            st.set_hard_state(HardState(term=term, vote=0, commit=index))
            self.cluster = Cluster(self, new_cluster=False, storage=st)
            await self.cluster.start(self._peer_listen)
            pending, self._pending = self._pending, []
            for req, fut in pending:
                if fut is not None:
                    self._waiters[req.header.ID] = fut
            self.log.info("lone member now replicates through Raft", **{"snapshot-index": index})
        await self.cluster._wait_for_leader(timeout=self.cluster.request_timeout)
        for req, _fut in pending:
            with contextlib.suppress(errors.RPCError):
                self.cluster.raft.propose(req.SerializeToString())

    def _member_add_single(self, r: rpc_pb2.MemberAddRequest) -> None:
        """The argument checks a lone member makes before it starts replicating."""
        if not r.peerURLs:
            raise errors.MEMBER_BAD_URLS
        existing = {u for m in self.members.values() for u in m.peer_urls}
        if any(u in existing for u in r.peerURLs):
            raise errors.PEER_URL_EXIST

    async def member_remove(self, r: rpc_pb2.MemberRemoveRequest) -> rpc_pb2.MemberRemoveResponse:
        if self.cluster is not None:
            return await self.cluster.member_remove(r)
        return self._member_remove_single(r)

    def _member_remove_single(self, r: rpc_pb2.MemberRemoveRequest) -> rpc_pb2.MemberRemoveResponse:
        if r.ID not in self.members:
            raise errors.MEMBER_NOT_FOUND
        raise errors.MEMBER_NOT_ENOUGH_STARTED

    async def member_update(self, r: rpc_pb2.MemberUpdateRequest) -> rpc_pb2.MemberUpdateResponse:
        if self.cluster is not None:
            return await self.cluster.member_update(r)
        return self._member_update_single(r)

    def _member_update_single(self, r: rpc_pb2.MemberUpdateRequest) -> rpc_pb2.MemberUpdateResponse:
        member = self.members.get(r.ID)
        if member is None:
            raise errors.MEMBER_NOT_FOUND
        others = {u for m in self.members.values() if m.id != r.ID for u in m.peer_urls}
        if any(u in others for u in r.peerURLs):
            raise errors.PEER_URL_EXIST
        member.peer_urls = list(r.peerURLs)
        self._persist_membership()
        members = sorted(self.members.values(), key=lambda m: m.id)
        return self.fill(rpc_pb2.MemberUpdateResponse(members=[m.to_pb() for m in members]))

    async def member_promote(self, r: rpc_pb2.MemberPromoteRequest) -> rpc_pb2.MemberPromoteResponse:
        if self.cluster is not None:
            return await self.cluster.member_promote(r)
        return self._member_promote_single(r)

    def _member_promote_single(self, r: rpc_pb2.MemberPromoteRequest) -> rpc_pb2.MemberPromoteResponse:
        member = self.members.get(r.ID)
        if member is None:
            raise errors.MEMBER_NOT_FOUND
        if not member.is_learner:
            raise errors.MEMBER_NOT_LEARNER
        raise errors.LEARNER_NOT_READY

    # ------------------------------------------------------------------ info
    def versions(self) -> dict[str, str]:
        cluster = self.cluster_version + ".0" if self.cluster_version else "not_decided"
        return {"etcdserver": __version__, "etcdcluster": cluster, "storage": self.storage_version() + ".0"}

    async def health(self, *, serializable: bool = False, exclude: frozenset[str] = frozenset()) -> tuple[bool, str]:
        active = [AlarmType.Name(a.alarm) for a in self.alarms.get()]
        blocking = [a for a in active if a not in exclude]
        if blocking:
            return False, "ALARM " + ",".join(blocking)
        if self._stopping:
            return False, "server stopped"
        if self.cluster is not None and self.cluster.leader == 0:
            return False, "RAFT NO LEADER"
        if not serializable:
            # A linearizable health check goes through the commit path like etcd's QGET.
            try:
                await asyncio.wait_for(self.range(rpc_pb2.RangeRequest(key=b"health")), 5.0)
            except Exception as exc:  # any failure means unhealthy
                return False, f"RANGE ERROR:{exc}"
        return True, ""


def _request_kind(req: InternalRaftRequest) -> str:
    for name in ("put", "delete_range", "txn", "compaction", "lease_grant", "lease_revoke",
                 "lease_checkpoint", "alarm", "cluster_version_set", "downgrade_info_set",
                 "kvetch_lease_revoke_batch",
                 "cluster_member_attr_set", "range"):
        if req.HasField(name):
            return name
    return "unknown"


def _txn_has_puts(t: rpc_pb2.TxnRequest, path: list[bool]) -> bool:
    ops = t.success if path[0] else t.failure
    return any(op.WhichOneof("request") == "request_put" for op in ops) or any(
        op.WhichOneof("request") == "request_txn" and _txn_has_puts(op.request_txn, [True]) for op in ops
    )


def _txn_cost(t: rpc_pb2.TxnRequest) -> int:
    cost = 0
    for ops in (t.success, t.failure):
        for op in ops:
            which = op.WhichOneof("request")
            if which == "request_put":
                cost += KV_OVERHEAD + len(op.request_put.key) + len(op.request_put.value)
            elif which == "request_txn":
                cost += _txn_cost(op.request_txn)
    return cost
