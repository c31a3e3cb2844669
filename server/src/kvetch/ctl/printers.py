"""Output of every command in etcdctl 3.5's formats: simple, json, fields, table.

Each printer writes to a text stream (stdout by default). ``CtlError`` with
exit code 4 is raised for a format a command does not support, as etcdctl does.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.mvccpb import kv_pb2
from kvetch.client import WatchResponse

from . import gojson
from .errors import EXIT_BAD_FEATURE, CtlError
from .gofmt import hex_prefixed, humanize_bytes, quote, render_table

ALARMS = {0: "NONE", 1: "NOSPACE", 2: "CORRUPT"}
EVENT_TYPES = {0: "PUT", 1: "DELETE"}


@dataclass
class EpHealth:
    ep: str
    health: bool
    took: str
    error: str = ""


@dataclass
class EpStatus:
    ep: str
    resp: rpc_pb2.StatusResponse


@dataclass
class EpHashKV:
    ep: str
    resp: rpc_pb2.HashKVResponse


def member_list_rows(r: rpc_pb2.MemberListResponse) -> tuple[list[str], list[list[str]]]:
    hdr = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"]
    rows = [
        [
            f"{m.ID:x}",
            "started" if m.name else "unstarted",
            m.name,
            ",".join(m.peerURLs),
            ",".join(m.clientURLs),
            "true" if m.isLearner else "false",
        ]
        for m in r.members
    ]
    return hdr, rows


def status_rows(sts: list[EpStatus]) -> tuple[list[str], list[list[str]]]:
    hdr = ["endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term",
           "raft index", "raft applied index", "errors"]
    rows = []
    for s in sts:
        r = s.resp
        rows.append([
            s.ep,
            f"{r.header.member_id:x}",
            r.version,
            humanize_bytes(r.dbSize),
            _b(r.leader == r.header.member_id),
            _b(r.isLearner),
            str(r.raftTerm),
            str(r.raftIndex),
            str(r.raftAppliedIndex),
            ", ".join(r.errors),
        ])
    return hdr, rows


def health_rows(hs: list[EpHealth]) -> tuple[list[str], list[list[str]]]:
    return ["endpoint", "health", "took", "error"], [[h.ep, _b(h.health), h.took, h.error] for h in hs]


def hashkv_rows(hs: list[EpHashKV]) -> tuple[list[str], list[list[str]]]:
    return ["endpoint", "hash"], [[h.ep, str(h.resp.hash)] for h in hs]


def _b(v: bool) -> str:
    return "true" if v else "false"


class Printer:
    """Base: every method unsupported (the json/fields/table printers override what they support)."""

    name = "?"

    def __init__(self, out: TextIO | None = None, is_hex: bool = False) -> None:
        self._out = out
        self.is_hex = is_hex
        self.value_only = False

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    def w(self, s: str = "") -> None:
        self.out.write(s + "\n")

    def unsupported(self, *_: Any) -> None:
        raise CtlError(f"{self.name} not supported as output format", EXIT_BAD_FEATURE)

    get = put = delete = txn = watch = unsupported
    grant = revoke = keep_alive = time_to_live = leases = unsupported
    member_add = member_remove = member_update = member_promote = member_list = unsupported
    endpoint_health = endpoint_status = endpoint_hashkv = move_leader = alarm = unsupported


class SimplePrinter(Printer):
    name = "simple"

    def kv(self, kv: kv_pb2.KeyValue) -> None:
        k, v = (hex_prefixed(kv.key), hex_prefixed(kv.value)) if self.is_hex else (_s(kv.key), _s(kv.value))
        if not self.value_only:
            self.w(k)
        self.w(v)

    def get(self, r: rpc_pb2.RangeResponse) -> None:
        for kv in r.kvs:
            self.kv(kv)

    def put(self, r: rpc_pb2.PutResponse) -> None:
        self.w("OK")
        if r.HasField("prev_kv"):
            self.kv(r.prev_kv)

    def delete(self, r: rpc_pb2.DeleteRangeResponse) -> None:
        self.w(str(r.deleted))
        for kv in r.prev_kvs:
            self.kv(kv)

    def txn(self, r: rpc_pb2.TxnResponse) -> None:
        self.w("SUCCESS" if r.succeeded else "FAILURE")
        for op in r.responses:
            self.w("")
            kind = op.WhichOneof("response")
            if kind == "response_delete_range":
                self.delete(op.response_delete_range)
            elif kind == "response_put":
                self.put(op.response_put)
            elif kind == "response_range":
                self.get(op.response_range)
            else:
                self.w(f"unexpected response {op}")

    def watch(self, r: WatchResponse) -> None:
        for ev in r.events:
            self.w(EVENT_TYPES.get(ev.type, str(ev.type)))
            if ev.HasField("prev_kv"):
                self.kv(ev.prev_kv)
            self.kv(ev.kv)

    def grant(self, r: rpc_pb2.LeaseGrantResponse) -> None:
        self.w(f"lease {_u64(r.ID):016x} granted with TTL({r.TTL}s)")

    def revoke(self, lease_id: int, r: rpc_pb2.LeaseRevokeResponse) -> None:
        self.w(f"lease {_u64(lease_id):016x} revoked")

    def keep_alive(self, r: rpc_pb2.LeaseKeepAliveResponse) -> None:
        self.w(f"lease {_u64(r.ID):016x} keepalived with TTL({r.TTL})")

    def time_to_live(self, r: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        if r.grantedTTL == 0 and r.TTL == -1:
            self.w(f"lease {_u64(r.ID):016x} already expired")
            return
        txt = f"lease {_u64(r.ID):016x} granted with TTL({r.grantedTTL}s), remaining({r.TTL}s)"
        if keys:
            txt += ", attached keys([" + " ".join(_s(k) for k in r.keys) + "])"
        self.w(txt)

    def leases(self, r: rpc_pb2.LeaseLeasesResponse) -> None:
        self.w(f"found {len(r.leases)} leases")
        for ls in r.leases:
            self.w(f"{_u64(ls.ID):016x}")

    def alarm(self, r: rpc_pb2.AlarmResponse) -> None:
        for a in r.alarms:
            self.w(f"memberID:{a.memberID} alarm:{ALARMS.get(a.alarm, str(a.alarm))} ")

    def member_add(self, r: rpc_pb2.MemberAddResponse) -> None:
        self.w(f"Member {r.member.ID:16x} added to cluster {r.header.cluster_id:16x}")

    def member_remove(self, mid: int, r: rpc_pb2.MemberRemoveResponse) -> None:
        self.w(f"Member {mid:16x} removed from cluster {r.header.cluster_id:16x}")

    def member_update(self, mid: int, r: rpc_pb2.MemberUpdateResponse) -> None:
        self.w(f"Member {mid:16x} updated in cluster {r.header.cluster_id:16x}")

    def member_promote(self, mid: int, r: rpc_pb2.MemberPromoteResponse) -> None:
        self.w(f"Member {mid:16x} promoted in cluster {r.header.cluster_id:16x}")

    def member_list(self, r: rpc_pb2.MemberListResponse) -> None:
        for row in member_list_rows(r)[1]:
            self.w(", ".join(row))

    def endpoint_health(self, hs: list[EpHealth]) -> None:
        for h in hs:
            if not h.error:
                self.w(f"{h.ep} is healthy: successfully committed proposal: took = {h.took}")
            else:
                sys.stderr.write(f"{h.ep} is unhealthy: failed to commit proposal: {h.error}\n")

    def endpoint_status(self, sts: list[EpStatus]) -> None:
        for row in status_rows(sts)[1]:
            self.w(", ".join(row))

    def endpoint_hashkv(self, hs: list[EpHashKV]) -> None:
        for row in hashkv_rows(hs)[1]:
            self.w(", ".join(row))

    def move_leader(self, leader: int, target: int, r: rpc_pb2.MoveLeaderResponse) -> None:
        self.w(f"Leadership transferred from {leader:x} to {target:x}")


class JSONPrinter(Printer):
    name = "json"

    def j(self, obj: Any) -> None:
        self.w(gojson.dumps(obj))

    def msg(self, m: Any, *_: Any) -> None:
        self.j(gojson.to_obj(m))

    get = put = delete = txn = alarm = msg
    member_add = msg

    def revoke(self, lease_id: int, r: rpc_pb2.LeaseRevokeResponse) -> None:
        self.msg(r)

    def member_remove(self, mid: int, r: Any) -> None:
        self.msg(r)

    member_update = member_promote = member_remove

    def move_leader(self, leader: int, target: int, r: rpc_pb2.MoveLeaderResponse) -> None:
        self.msg(r)

    def watch(self, r: WatchResponse) -> None:
        self.j({
            "Header": gojson.to_obj(r.header),
            "Events": [gojson.to_obj(e) for e in r.events],
            "CompactRevision": r.compact_revision,
            "Canceled": r.canceled,
            "Created": r.created,
        })

    def grant(self, r: rpc_pb2.LeaseGrantResponse) -> None:
        self.j({**_hdr(r), "ID": r.ID, "TTL": r.TTL, "Error": r.error})

    def keep_alive(self, r: rpc_pb2.LeaseKeepAliveResponse) -> None:
        self.j({**_hdr(r), "ID": r.ID, "TTL": r.TTL})

    def time_to_live(self, r: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        ks = [gojson.base64.b64encode(k).decode() for k in r.keys] if len(r.keys) else None
        self.j({**_hdr(r), "id": r.ID, "ttl": r.TTL, "granted-ttl": r.grantedTTL, "keys": ks})

    def leases(self, r: rpc_pb2.LeaseLeasesResponse) -> None:
        self.j({**_hdr(r), "leases": [{"id": ls.ID} for ls in r.leases]})

    def member_list(self, r: rpc_pb2.MemberListResponse) -> None:
        if not self.is_hex:
            self.msg(r)
            return
        h = r.header
        s = f'{{"header":{{"cluster_id":"{h.cluster_id:x}","member_id":"{h.member_id:x}","raft_term":{h.raft_term:x}}}'
        for i, m in enumerate(r.members):
            s += ',"members":[{"ID":"' if i == 0 else ',{"ID":"'
            s += f'{m.ID:x}","name":"{m.name}","peerURLs":'
            s += gojson.dumps(list(m.peerURLs) if len(m.peerURLs) else None)
            s += ',"clientURLS":' + gojson.dumps(list(m.clientURLs) if len(m.clientURLs) else None) + "}"
            if i == len(r.members) - 1:
                s += "]"
        self.w(s + "}")

    def endpoint_health(self, hs: list[EpHealth]) -> None:
        out = []
        for h in hs:
            d: dict[str, Any] = {"endpoint": h.ep, "health": h.health, "took": h.took}
            if h.error:
                d["error"] = h.error
            out.append(d)
        self.j(out)

    def endpoint_status(self, sts: list[EpStatus]) -> None:
        self.j([{"Endpoint": s.ep, "Status": gojson.to_obj(s.resp)} for s in sts])

    def endpoint_hashkv(self, hs: list[EpHashKV]) -> None:
        self.j([{"Endpoint": h.ep, "HashKV": gojson.to_obj(h.resp)} for h in hs])


def _hdr(r: Any) -> dict[str, Any]:
    return gojson.to_obj(r.header) if r.HasField("header") else {}


class FieldsPrinter(Printer):
    name = "fields"

    def kv(self, pfx: str, kv: kv_pb2.KeyValue) -> None:
        self.w(f'"{pfx}Key" : {quote(kv.key)}')
        self.w(f'"{pfx}CreateRevision" : {kv.create_revision}')
        self.w(f'"{pfx}ModRevision" : {kv.mod_revision}')
        self.w(f'"{pfx}Version" : {kv.version}')
        self.w(f'"{pfx}Value" : {quote(kv.value)}')
        self.w(f'"{pfx}Lease" : {kv.lease}')

    def hdr(self, h: rpc_pb2.ResponseHeader) -> None:
        self.w(f'"ClusterID" : {h.cluster_id}')
        self.w(f'"MemberID" : {h.member_id}')
        self.w(f'"Revision" : {h.revision}')
        self.w(f'"RaftTerm" : {h.raft_term}')

    def delete(self, r: rpc_pb2.DeleteRangeResponse) -> None:
        self.hdr(r.header)
        self.w(f'"Deleted" : {r.deleted}')
        for kv in r.prev_kvs:
            self.kv("Prev", kv)

    def get(self, r: rpc_pb2.RangeResponse) -> None:
        self.hdr(r.header)
        for kv in r.kvs:
            self.kv("", kv)
        self.w(f'"More" : {_b(r.more)}')
        self.w(f'"Count" : {r.count}')

    def put(self, r: rpc_pb2.PutResponse) -> None:
        self.hdr(r.header)
        if r.HasField("prev_kv"):
            self.kv("Prev", r.prev_kv)

    def txn(self, r: rpc_pb2.TxnResponse) -> None:
        self.hdr(r.header)
        self.w(f'"Succeeded" : {_b(r.succeeded)}')
        for op in r.responses:
            kind = op.WhichOneof("response")
            if kind == "response_delete_range":
                self.delete(op.response_delete_range)
            elif kind == "response_put":
                self.put(op.response_put)
            elif kind == "response_range":
                self.get(op.response_range)

    def watch(self, r: WatchResponse) -> None:
        self.hdr(r.header)
        for ev in r.events:
            self.w(f'"Type" : {EVENT_TYPES.get(ev.type, str(ev.type))}')
            if ev.HasField("prev_kv"):
                self.kv("Prev", ev.prev_kv)
            self.kv("", ev.kv)

    def grant(self, r: rpc_pb2.LeaseGrantResponse) -> None:
        self.hdr(r.header)
        self.w(f'"ID" : {r.ID}')
        self.w(f'"TTL" : {r.TTL}')

    def revoke(self, lease_id: int, r: rpc_pb2.LeaseRevokeResponse) -> None:
        self.hdr(r.header)

    def keep_alive(self, r: rpc_pb2.LeaseKeepAliveResponse) -> None:
        self.grant(r)  # type: ignore[arg-type]

    def time_to_live(self, r: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        self.hdr(r.header)
        self.w(f'"ID" : {r.ID}')
        self.w(f'"TTL" : {r.TTL}')
        self.w(f'"GrantedTTL" : {r.grantedTTL}')
        for k in r.keys:
            self.w(f'"Key" : {quote(k)}')

    def leases(self, r: rpc_pb2.LeaseLeasesResponse) -> None:
        self.hdr(r.header)
        for ls in r.leases:
            self.w(f'"ID" : {ls.ID}')

    def member_list(self, r: rpc_pb2.MemberListResponse) -> None:
        self.hdr(r.header)
        for m in r.members:
            self.w(f'"ID" : {m.ID}')
            self.w(f'"Name" : {quote(m.name)}')
            for u in m.peerURLs:
                self.w(f'"PeerURL" : {quote(u)}')
            for u in m.clientURLs:
                self.w(f'"ClientURL" : {quote(u)}')
            self.w(f'"IsLearner" : {_b(m.isLearner)}')
            self.w()

    def endpoint_health(self, hs: list[EpHealth]) -> None:
        for h in hs:
            self.w(f'"Endpoint" : {quote(h.ep)}')
            self.w(f'"Health" : {_b(h.health)}')
            self.w(f'"Took" : {h.took}')
            self.w(f'"Error" : {h.error}')
            self.w()

    def endpoint_status(self, sts: list[EpStatus]) -> None:
        for s in sts:
            r = s.resp
            self.hdr(r.header)
            self.w(f'"Version" : {quote(r.version)}')
            self.w(f'"DBSize" : {r.dbSize}')
            self.w(f'"Leader" : {r.leader}')
            self.w(f'"IsLearner" : {_b(r.isLearner)}')
            self.w(f'"RaftIndex" : {r.raftIndex}')
            self.w(f'"RaftTerm" : {r.raftTerm}')
            self.w(f'"RaftAppliedIndex" : {r.raftAppliedIndex}')
            self.w(f'"Errors" : [{" ".join(r.errors)}]')
            self.w(f'"Endpoint" : {quote(s.ep)}')
            self.w()

    def endpoint_hashkv(self, hs: list[EpHashKV]) -> None:
        for h in hs:
            self.hdr(h.resp.header)
            self.w(f'"Endpoint" : {quote(h.ep)}')
            self.w(f'"Hash" : {h.resp.hash}')
            self.w()

    def alarm(self, r: rpc_pb2.AlarmResponse) -> None:
        self.hdr(r.header)
        for a in r.alarms:
            self.w(f'"MemberID" : {a.memberID}')
            self.w(f'"AlarmType" : {ALARMS.get(a.alarm, str(a.alarm))}')
            self.w()


class TablePrinter(Printer):
    name = "table"

    def _t(self, rows: tuple[list[str], list[list[str]]]) -> None:
        self.out.write(render_table(*rows))

    def member_list(self, r: rpc_pb2.MemberListResponse) -> None:
        self._t(member_list_rows(r))

    def endpoint_health(self, hs: list[EpHealth]) -> None:
        self._t(health_rows(hs))

    def endpoint_status(self, sts: list[EpStatus]) -> None:
        self._t(status_rows(sts))

    def endpoint_hashkv(self, hs: list[EpHashKV]) -> None:
        self._t(hashkv_rows(hs))


def _s(b: bytes) -> str:
    return b.decode("utf-8", errors="surrogateescape")


def _u64(v: int) -> int:
    return v & 0xFFFFFFFFFFFFFFFF


def make_printer(kind: str, is_hex: bool = False, out: TextIO | None = None) -> Printer:
    classes: dict[str, type[Printer]] = {
        "simple": SimplePrinter, "json": JSONPrinter, "fields": FieldsPrinter, "table": TablePrinter,
    }
    if kind not in classes:
        raise CtlError(f"unsupported output format {kind!r}", EXIT_BAD_FEATURE)
    return classes[kind](out, is_hex)
