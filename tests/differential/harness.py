"""Run the same etcd v3 requests against two servers and compare the answers.

Side A is the oracle (real etcd 3.5.1), side B the server under test. Every
unary response is turned into a plain dict (protobuf JSON mapping, proto field
names), member-specific header fields are dropped (cluster_id, member_id,
raft_term), time-dependent fields are bucketed (a lease's remaining TTL), and
the two dicts must be equal; an error must have the same gRPC code and
message on both sides. Watch streams are recorded on both sides and compared
as flat event lists (batching into responses may legitimately differ).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from e2e_support.grpcapi import Stubs, pb, stubs
from e2e_support.polling import wait_until
from e2e_support.server import Server
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

MEMBER_FIELDS = ("cluster_id", "member_id", "raft_term")
RPC_TIMEOUT = 10.0


class Mismatch(AssertionError):
    """The two servers answered the same request differently."""


def normalise(obj: Any) -> Any:
    """Drop member-specific header fields anywhere in a response dict."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key == "header" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in MEMBER_FIELDS}
            out[key] = normalise(value)
        return out
    if isinstance(obj, list):
        return [normalise(v) for v in obj]
    return obj


def to_dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True)


@dataclass(frozen=True)
class Outcome:
    """A response (normalised dict) or an error (code name, details)."""

    response: Any = None
    error: tuple[str, str] | None = None

    def describe(self) -> str:
        return f"error {self.error}" if self.error else f"{self.response}"


def call(fn: Callable[[], Message], post: Callable[[dict[str, Any]], Any] | None = None) -> Outcome:
    try:
        msg = fn()
    except grpc.RpcError as exc:
        return Outcome(error=(exc.code().name, exc.details() or ""))
    resp = normalise(to_dict(msg))
    return Outcome(response=post(resp) if post else resp)


# -- ranges sorted on a non-key target: ties ------------------------------------

_TARGET_FIELD = {
    pb.RangeRequest.VERSION: "version",
    pb.RangeRequest.CREATE: "create_revision",
    pb.RangeRequest.MOD: "mod_revision",
    pb.RangeRequest.VALUE: "value",
}


def equal_modulo_ties(req: pb.RangeRequest, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True if two sorted Range answers differ only in the order of tied kvs.

    etcd 3.5.1 sorts with Go's (unstable) sort.Sort after reading in key
    order, so the order of kvs that tie on the sort target is an
    implementation detail (stable in practice below 12 results, where Go uses
    insertion sort). With a limit, *which* tied kvs make the cut can differ
    too; then only the target values and the count are compared. With
    keys_only the values are not in the answer, so VALUE ties are invisible
    and only the set of keys is compared.
    """
    # a non-key target with sort_order NONE sorts ascending in etcd
    target = _TARGET_FIELD.get(req.sort_target)
    if target is None:
        return False
    rest_a = {k: v for k, v in a.items() if k != "kvs"}
    rest_b = {k: v for k, v in b.items() if k != "kvs"}
    if rest_a != rest_b:
        return False
    kvs_a, kvs_b = a.get("kvs", []), b.get("kvs", [])
    if [kv.get(target) for kv in kvs_a] != [kv.get(target) for kv in kvs_b]:
        return False
    if a.get("more"):
        return True
    key = lambda kv: (str(kv.get(target)), kv["key"])  # noqa: E731
    return sorted(kvs_a, key=key) == sorted(kvs_b, key=key)


# -- watches -----------------------------------------------------------------


class WatchStream:
    """One Watch stream on one server; collects every response in a thread."""

    def __init__(self, st: Stubs) -> None:
        self._requests: queue.Queue[pb.WatchRequest | None] = queue.Queue()
        self.responses: list[dict[str, Any]] = []
        self.error: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._call = st.watch.Watch(self._iter_requests())
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _iter_requests(self) -> Iterator[pb.WatchRequest]:
        while True:
            req = self._requests.get()
            if req is None:
                return
            yield req

    def _read(self) -> None:
        try:
            for resp in self._call:
                with self._lock:
                    self.responses.append(normalise(to_dict(resp)))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.error = (exc.code().name, exc.details() or "")

    def send(self, req: pb.WatchRequest) -> None:
        self._requests.put(req)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.responses)

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()
        self._thread.join(5)


def watch_view(responses: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per watch id: created/canceled flags, compact revision, cancel reason, flat events."""
    view: dict[int, dict[str, Any]] = {}
    for resp in responses:
        wid = int(resp.get("watch_id", 0))
        entry = view.setdefault(wid, {"created": False, "canceled": False, "compact_revision": 0,
                                      "cancel_reason": "", "events": []})
        entry["created"] |= bool(resp.get("created"))
        entry["canceled"] |= bool(resp.get("canceled"))
        if resp.get("compact_revision"):
            entry["compact_revision"] = int(resp["compact_revision"])
        if resp.get("cancel_reason"):
            entry["cancel_reason"] = resp["cancel_reason"]
        entry["events"].extend(resp.get("events", []))
    return view


def last_event_revision(entry: dict[str, Any]) -> int:
    return max((int(ev["kv"].get("mod_revision", 0)) for ev in entry["events"]), default=0)


# -- the pair ------------------------------------------------------------------


@dataclass
class Pair:
    """The oracle (a) and the server under test (b), driven in lock step."""

    a: Server
    b: Server
    sa: Stubs = field(init=False)
    sb: Stubs = field(init=False)
    log: list[str] = field(default_factory=list)
    tie_notes: list[str] = field(default_factory=list)
    watches: list[tuple[WatchStream, WatchStream]] = field(default_factory=list)
    watch_creates: list[pb.WatchCreateRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sa = stubs(self.a.channel())
        self.sb = stubs(self.b.channel())

    def both(self, what: str, fn: Callable[[Stubs], Message],
             post: Callable[[dict[str, Any]], Any] | None = None,
             request: pb.RangeRequest | None = None) -> Outcome:
        """Run ``fn`` on a then b; raise Mismatch if the outcomes differ."""
        oa = call(lambda: fn(self.sa), post)
        ob = call(lambda: fn(self.sb), post)
        self.log.append(f"{what} -> {oa.describe()}"[:400])
        if oa != ob:
            if (request is not None and oa.response is not None and ob.response is not None
                    and equal_modulo_ties(request, oa.response, ob.response)):
                self.tie_notes.append(f"{what}: {self.a.flavour}={oa.response} {self.b.flavour}={ob.response}")
                return oa
            raise Mismatch(
                f"{what}\n  {self.a.flavour}: {oa.describe()}\n  {self.b.flavour}: {ob.describe()}")
        return oa

    # convenience wrappers -------------------------------------------------
    def range(self, req: pb.RangeRequest, what: str = "") -> Outcome:
        return self.both(what or f"Range({_short(req)})", lambda s: s.kv.Range(req, timeout=RPC_TIMEOUT),
                         request=req)

    def put(self, req: pb.PutRequest, what: str = "") -> Outcome:
        return self.both(what or f"Put({_short(req)})", lambda s: s.kv.Put(req, timeout=RPC_TIMEOUT))

    def delete(self, req: pb.DeleteRangeRequest, what: str = "") -> Outcome:
        return self.both(what or f"DeleteRange({_short(req)})",
                         lambda s: s.kv.DeleteRange(req, timeout=RPC_TIMEOUT))

    def txn(self, req: pb.TxnRequest, what: str = "") -> Outcome:
        return self.both(what or f"Txn({_short(req)})", lambda s: s.kv.Txn(req, timeout=RPC_TIMEOUT))

    def compact(self, req: pb.CompactionRequest, what: str = "") -> Outcome:
        return self.both(what or f"Compact({_short(req)})", lambda s: s.kv.Compact(req, timeout=RPC_TIMEOUT))

    def hashkv(self, revision: int = 0) -> Outcome:
        req = pb.HashKVRequest(revision=revision)
        return self.both(f"HashKV(revision={revision})",
                         lambda s: s.maintenance.HashKV(req, timeout=RPC_TIMEOUT))

    def hashkv_settled(self, revision: int = 0, timeout: float = 3.0) -> Outcome:
        """HashKV on both sides, retried until they agree (or the deadline).

        etcd 3.5.1 deletes compacted revisions from bbolt in its batch
        transaction, and deletes (unlike puts) are invisible to readers until
        the next backend commit (every 100 ms). For that window HashKV can
        differ even between two real etcd members that saw the same requests.
        A real divergence does not go away, so it still fails here.
        """
        req = pb.HashKVRequest(revision=revision)
        last: list[Outcome] = []

        def agree() -> bool:
            oa = call(lambda: self.sa.maintenance.HashKV(req, timeout=RPC_TIMEOUT))
            ob = call(lambda: self.sb.maintenance.HashKV(req, timeout=RPC_TIMEOUT))
            last[:] = [oa, ob]
            return oa == ob

        try:
            wait_until(agree, timeout=timeout, interval=0.05, what="HashKV to agree")
        except TimeoutError:
            oa, ob = last
            raise Mismatch(f"HashKV(revision={revision}) (settled {timeout}s)\n  {self.a.flavour}: "
                           f"{oa.describe()}\n  {self.b.flavour}: {ob.describe()}") from None
        self.log.append(f"HashKV(revision={revision}) -> {last[0].describe()}")
        return last[0]

    def lease_grant(self, req: pb.LeaseGrantRequest) -> Outcome:
        return self.both(f"LeaseGrant({_short(req)})", lambda s: s.lease.LeaseGrant(req, timeout=RPC_TIMEOUT))

    def lease_revoke(self, req: pb.LeaseRevokeRequest) -> Outcome:
        return self.both(f"LeaseRevoke({_short(req)})",
                         lambda s: s.lease.LeaseRevoke(req, timeout=RPC_TIMEOUT))

    def lease_ttl(self, req: pb.LeaseTimeToLiveRequest) -> Outcome:
        def bucket(resp: dict[str, Any]) -> dict[str, Any]:
            # remaining TTL depends on when each server was asked: keep its sign only
            ttl = int(resp.get("TTL", 0))
            resp["TTL"] = "positive" if ttl > 0 else ttl
            if "keys" in resp:
                resp["keys"] = sorted(resp["keys"])
            return resp
        return self.both(f"LeaseTimeToLive({_short(req)})",
                         lambda s: s.lease.LeaseTimeToLive(req, timeout=RPC_TIMEOUT), post=bucket)

    def lease_leases(self) -> Outcome:
        def order(resp: dict[str, Any]) -> dict[str, Any]:
            resp["leases"] = sorted(resp.get("leases", []), key=lambda item: int(item["ID"]))
            return resp
        return self.both("LeaseLeases()", lambda s: s.lease.LeaseLeases(pb.LeaseLeasesRequest(),
                                                                         timeout=RPC_TIMEOUT), post=order)

    def lease_keepalive_once(self, lease_id: int) -> Outcome:
        def once(s: Stubs) -> Message:
            stream = s.lease.LeaseKeepAlive(iter([pb.LeaseKeepAliveRequest(ID=lease_id)]),
                                            timeout=RPC_TIMEOUT)
            for resp in stream:
                return resp
            raise AssertionError("LeaseKeepAlive stream ended without a response")
        return self.both(f"LeaseKeepAlive(ID={lease_id})", once)

    # watches ---------------------------------------------------------------
    def open_watch(self, create: pb.WatchCreateRequest) -> int:
        """Create a watch on a fresh stream on each side; returns its index."""
        wa, wb = WatchStream(self.sa), WatchStream(self.sb)
        req = pb.WatchRequest(create_request=create)
        wa.send(req)
        wb.send(req)
        self.watches.append((wa, wb))
        self.watch_creates.append(create)
        # creation is asynchronous: wait for the "created" answer on both sides
        # so that later requests are ordered after it
        wait_until(lambda: all(any(r.get("created") for r in w.snapshot()) or w.error for w in (wa, wb)),
                   timeout=10, what="watch created on both servers")
        self.log.append(f"Watch#{len(self.watches) - 1}({_short(create)})")
        return len(self.watches) - 1

    def compare_watches(self, until: list[int], timeout: float = 15.0) -> None:
        """Wait until watch i has seen revision ``until[i]`` (or was canceled); compare."""
        def settled(ws: WatchStream, until_revision: int) -> bool:
            view = watch_view(ws.snapshot())
            if ws.error:
                return True
            if not view:
                return False
            entry = next(iter(view.values()))
            return entry["canceled"] or last_event_revision(entry) >= until_revision

        for index, (wa, wb) in enumerate(self.watches):
            rev = until[index]
            try:
                wait_until(lambda wa=wa, wb=wb, rev=rev: settled(wa, rev) and settled(wb, rev),
                           timeout=timeout, what=f"watch #{index} to reach revision {rev}")
            except TimeoutError as exc:
                raise Mismatch(
                    f"watch #{index} did not settle\n  {self.a.flavour}: {watch_view(wa.snapshot())}"
                    f"\n  {self.b.flavour}: {watch_view(wb.snapshot())}") from exc
            va, vb = list(watch_view(wa.snapshot()).values()), list(watch_view(wb.snapshot()).values())
            if va != vb or wa.error != wb.error:
                raise Mismatch(f"watch #{index} streams differ\n  {self.a.flavour}: {va} {wa.error}"
                               f"\n  {self.b.flavour}: {vb} {wb.error}")

    def close(self) -> None:
        for wa, wb in self.watches:
            wa.close()
            wb.close()


def _short(msg: Message) -> str:
    text = str(to_dict(msg))
    return text if len(text) < 300 else text[:300] + "..."
