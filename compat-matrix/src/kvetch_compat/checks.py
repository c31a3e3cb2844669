"""Invariant checks run after every step; each returns a CheckResult with evidence.

Health, versions, downgrade state, member lists, HashKV and data at one
revision, acknowledged writes readable at their revision, linearizability of
the history, watch completeness, and members' logs scanned for panics.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from . import linearizability
from .cluster import Cluster, Member, wait_for
from .history import Op
from .rpc import RpcError
from .workload import PREFIX, Watcher

POLL = 15.0  # seconds a check may wait for the cluster to settle (etcd moves versions every ~4 s)


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "data": self.data}


def _live(cluster: Cluster, expect: dict[str, Any]) -> list[Member]:
    down = set(expect.get("down", []))
    return [m for n, m in cluster.members.items() if n not in down and n in expect["members"]]


def check_alive(cluster: Cluster, expect: dict[str, Any]) -> CheckResult:
    members = _live(cluster, expect)
    missing = sorted(set(expect["members"]) - set(cluster.members))

    def bad() -> dict[str, str]:
        out: dict[str, str] = {}
        for m in members:
            if not m.alive:
                rc = m.proc.returncode if m.proc else None
                out[m.name] = f"process exited (rc={rc})"
                continue
            ok, body = m.flavour.health(m.client_url)
            if not ok:
                out[m.name] = f"/health: {body[:200]}"
        return out

    problems: dict[str, str] = {} if wait_for(lambda: not bad(), POLL, 0.5) else bad()
    if missing:
        problems.update({n: "member not in cluster" for n in missing})
    return CheckResult("alive-healthy", not problems,
                       "; ".join(f"{k}: {v}" for k, v in sorted(problems.items())) or f"{len(members)} members healthy")


def check_versions(cluster: Cluster, expect: dict[str, Any]) -> list[CheckResult]:
    members = [m for m in _live(cluster, expect) if m.alive]
    want_cv = expect["cluster_version"]

    def read() -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for m in members:
            row: dict[str, str] = {"expected_server": m.flavour.version}
            try:
                with m.client(3) as c:
                    st = c.status()
                row["status"] = st.version
                row["storage"] = st.storageVersion  # etcd 3.6+ and kvetch; "" where the field does not exist
            except RpcError as exc:
                row["status"] = f"error: {exc.code}"
                row["storage"] = ""
            try:
                hv = m.flavour.http_version(m.client_url)
                row["http_server"] = hv.get("etcdserver", "")
                row["http_cluster"] = hv.get("etcdcluster", "")
            except Exception as exc:
                row["http_server"] = row["http_cluster"] = f"error: {type(exc).__name__}"
            mv = m.flavour.metrics_versions(m.client_url)
            row["metric_server"] = mv.get("server", "")
            row["metric_cluster"] = mv.get("cluster", "")
            out[m.name] = row
        return out

    def cv_ok(rows: dict[str, dict[str, str]]) -> bool:
        if want_cv is None:  # unknown by design: members must agree with each other
            return len({_mm(r["http_cluster"]) for r in rows.values()}) == 1
        return all(_mm(r["http_cluster"]) == want_cv for r in rows.values())

    rows = wait_for(lambda: (lambda r: r if cv_ok(r) else None)(read()), POLL, 1.0) or read()
    server_bad = [f"{n}: Status={r['status']} /version={r['http_server']} metric={r['metric_server'] or '-'} "
                  f"(expected {r['expected_server']})"
                  for n, r in rows.items()
                  if r["status"] != r["expected_server"] or r["http_server"] != r["expected_server"]
                  or (r["metric_server"] and r["metric_server"] != r["expected_server"])]
    if want_cv is None:  # the plan left it open: require agreement between members only
        agreed = {_mm(r["http_cluster"]) for r in rows.values()}
        want_cv = agreed.pop() if len(agreed) == 1 else "one value on every member"
    cv_bad = [f"{n}: /version etcdcluster={r['http_cluster']} metric={r['metric_cluster'] or '-'}"
              for n, r in rows.items()
              if _mm(r["http_cluster"]) != want_cv or (r["metric_cluster"] and r["metric_cluster"] != want_cv)]
    storage_rows = {n: r["storage"] for n, r in rows.items() if r.get("storage")}
    storage_bad = [f"{n}: storage version {v}" for n, v in storage_rows.items() if _mm(v) != want_cv]
    storage = CheckResult(
        "storage-version", not storage_bad,
        ("expected " + want_cv + "; " + "; ".join(storage_bad)) if storage_bad
        else (f"{want_cv} on {len(storage_rows)} members" if storage_rows else "not exposed by these versions"),
        {"members": storage_rows})
    return [
        storage,
        CheckResult("server-version", not server_bad, "; ".join(server_bad) or "as expected", {"members": rows}),
        CheckResult("cluster-version", not cv_bad,
                    (f"expected {want_cv}; " + "; ".join(cv_bad)) if cv_bad else f"{want_cv} on all members",
                    {"expected": want_cv}),
    ]


def _mm(v: str) -> str:
    m = re.match(r"(\d+)\.(\d+)", v or "")
    return f"{m.group(1)}.{m.group(2)}" if m else v


def check_downgrade(cluster: Cluster, expect: dict[str, Any]) -> CheckResult | None:
    want = expect.get("downgrade")
    if want is None:
        return None
    members = [m for m in _live(cluster, expect) if m.alive and m.flavour.supports_downgrade_api]
    if not members:
        return None

    def read() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in members:
            info = None
            try:
                with m.client(3) as c:
                    st = c.status()
                    info = st.downgradeInfo if st.HasField("downgradeInfo") else None
            except RpcError:
                pass
            ds = m.flavour.downgrade_state(m.client_url, m.peer_url, info)
            out[m.name] = None if ds is None else {"enabled": ds.enabled, "target": ds.target, "source": ds.source}
        return out

    def matches(rows: dict[str, Any]) -> bool:
        for r in rows.values():
            if r is None or r["enabled"] != want["enabled"]:
                return False
            if r["target"] and want["enabled"] and _mm(r["target"]) != want["target"]:
                return False
        return True

    rows = wait_for(lambda: (lambda r: r if matches(r) else None)(read()), POLL, 1.0) or read()
    ok = matches(rows)
    detail = f"expected enabled={want['enabled']} target={want['target'] or '-'}"
    if not ok:
        detail += "; got " + "; ".join(
            f"{n}: {'unreadable' if r is None else ('enabled' if r['enabled'] else 'disabled') + (' ' + r['target'] if r['target'] else '') + ' via ' + r['source']}"
            for n, r in rows.items())
    return CheckResult("downgrade-state", ok, detail, {"members": rows, "expected": want})


def check_member_list(cluster: Cluster, expect: dict[str, Any]) -> CheckResult:
    members = [m for m in _live(cluster, expect) if m.alive]
    want = {cluster.members[n].peer_url for n in expect["members"] if n in cluster.members}

    def read() -> dict[str, list[str]]:
        out = {}
        for m in members:
            with m.client(5) as c:
                out[m.name] = sorted(u for x in c.member_list().members for u in x.peerURLs)
        return out

    def good() -> dict[str, list[str]] | None:
        r = read()
        return r if all(set(v) == want for v in r.values()) else None

    rows = wait_for(good, POLL, 0.5)
    if rows:
        return CheckResult("member-list", True, f"{len(want)} members listed identically by all")
    try:
        rows = read()
    except RpcError as exc:
        return CheckResult("member-list", False, f"MemberList failed: {exc}")
    bad = {n: v for n, v in rows.items() if set(v) != want}
    return CheckResult("member-list", False, "; ".join(f"{n} lists {v}" for n, v in bad.items())
                       + f" (expected {sorted(want)})", {"lists": rows})


def check_leader(cluster: Cluster, expect: dict[str, Any]) -> CheckResult:
    """Every live member reports the same leader, and it is a member of the cluster."""
    members = set(expect["members"]) - set(expect.get("down", []))

    def agreed() -> str | None:
        views = cluster.leader_views()
        vals = set(views.values())
        return vals.pop() if len(vals) == 1 and next(iter(vals)) in members else None

    leader = wait_for(agreed, POLL, 0.5)
    if leader:
        return CheckResult("leader", True, f"all members follow {leader}")
    views = cluster.leader_views()
    return CheckResult("leader", False, "no single leader: " + ", ".join(f"{k} says {v}" for k, v in sorted(views.items())),
                       {"views": views})


def check_progress(cluster: Cluster, expect: dict[str, Any], tag: str) -> CheckResult:
    """The cluster commits a new write, and every live member serves it (linearizable read)."""
    import time as _time

    members = [m for m in _live(cluster, expect) if m.alive]
    key = f"{PREFIX}probe/{tag}".encode()
    t0 = _time.monotonic()
    rev = 0
    errors: list[str] = []

    def write() -> bool:
        nonlocal rev
        for m in members:
            try:
                with m.client(5) as c:
                    rev = c.put(key, tag.encode()).header.revision
                return True
            except RpcError as exc:
                errors.append(f"{m.name}: {exc.code}")
        return False

    if not members or not wait_for(write, POLL, 0.5):
        return CheckResult("progress", False, f"no write committed within {POLL:.0f}s ({'; '.join(errors[-3:])})")
    took = _time.monotonic() - t0

    def read_all() -> list[str]:
        bad = []
        for m in members:
            try:
                with m.client(5) as c:
                    kv = c.get(key).kvs
                if not kv or kv[0].mod_revision < rev:
                    bad.append(f"{m.name}: {'absent' if not kv else kv[0].mod_revision}")
            except RpcError as exc:
                bad.append(f"{m.name}: {exc.code}")
        return bad

    settled = wait_for(lambda: not read_all(), POLL, 0.5)
    bad = [] if settled else read_all()
    return CheckResult("progress", not bad,
                       (f"write committed at revision {rev} in {took:.1f}s, read back on {len(members)} members"
                        if not bad else f"write at revision {rev} not readable: {'; '.join(bad)}"),
                       {"seconds": round(took, 2), "revision": rev})


def check_hash_and_data(cluster: Cluster, expect: dict[str, Any]) -> list[CheckResult]:
    members = [m for m in _live(cluster, expect) if m.alive]
    if not members:
        return [CheckResult("hashkv", False, "no live member")]
    try:
        with members[0].client(5) as c:
            rev = c.get(PREFIX.encode(), prefix=True).header.revision
    except RpcError as exc:
        return [CheckResult("hashkv", False, f"cannot read the current revision: {exc}")]
    hashes: dict[str, Any] = {}
    datas: dict[str, Any] = {}

    def read_all() -> bool:
        for m in members:
            if m.name in hashes and m.name in datas:
                continue
            try:
                with m.client(10) as c:
                    h = c.hash_kv(rev)
                    r = c.get(PREFIX.encode(), prefix=True, revision=rev, serializable=True)
                hashes[m.name] = {"hash": h.hash, "compact_revision": h.compact_revision}
                datas[m.name] = [(kv.key.decode(), kv.value.decode(), kv.mod_revision) for kv in r.kvs]
            except RpcError as exc:
                hashes.setdefault(f"_err_{m.name}", str(exc))
        return all(m.name in hashes and m.name in datas for m in members)

    complete = wait_for(read_all, POLL, 0.5)
    errors = {k[5:]: v for k, v in hashes.items() if k.startswith("_err_") and k[5:] not in datas}
    got = {k: v for k, v in hashes.items() if not k.startswith("_err_")}
    distinct = {v["hash"] for v in got.values()}
    ok_h = bool(complete) and len(distinct) == 1
    detail_h = (f"HashKV at revision {rev}: " + ", ".join(f"{n}={v['hash']}" for n, v in sorted(got.items()))
                + ("; errors: " + "; ".join(f"{n}: {e}" for n, e in errors.items()) if errors else ""))
    ref = next(iter(datas.values()), [])
    diff = {n: _diff(ref, d) for n, d in datas.items() if d != ref}
    ok_d = bool(complete) and not diff
    detail_d = (f"{len(ref)} keys at revision {rev} equal on {len(datas)} members" if ok_d
                else "; ".join(f"{n}: {d}" for n, d in diff.items()) or "could not read all members")
    return [CheckResult("hashkv", ok_h, detail_h, {"revision": rev, "hashes": got}),
            CheckResult("data-equal", ok_d, detail_d, {"revision": rev})]


def _diff(a: list[tuple[str, str, int]], b: list[tuple[str, str, int]]) -> str:
    sa, sb = set(a), set(b)
    return f"missing {sorted(sa - sb)[:3]}, extra {sorted(sb - sa)[:3]}"


def check_acknowledged(cluster: Cluster, expect: dict[str, Any], ops: list[Op], since: int) -> CheckResult:
    """Every acknowledged write since the last check is readable at its own revision."""
    members = [m for m in _live(cluster, expect) if m.alive]
    writes = [o for o in ops[since:] if (o.outcome == "ok" and o.kind in ("put", "lease-put"))
              or (o.kind == "cas" and o.outcome == "ok" and o.succeeded)]
    if not members or not writes:
        return CheckResult("acknowledged-writes", True, "no new acknowledged writes")
    sample = writes if len(writes) <= 300 else writes[:: max(1, len(writes) // 300)]
    lost: list[str] = []
    m = members[len(writes) % len(members)]
    try:
        with m.client(5) as c:
            for w in sample:
                r = c.get(w.key.encode(), revision=w.revision)
                kv = r.kvs[0] if r.kvs else None
                if kv is None or kv.value.decode() != w.value or kv.mod_revision != w.revision:
                    got = "absent" if kv is None else f"{kv.value.decode()!r}@{kv.mod_revision}"
                    lost.append(f"#{w.id} {w.key}={w.value!r}@{w.revision}: read {got} from {m.name}")
    except RpcError as exc:
        return CheckResult("acknowledged-writes", False, f"read-back failed on {m.name}: {exc}")
    return CheckResult("acknowledged-writes", not lost,
                       "; ".join(lost[:10]) or f"{len(sample)} acknowledged writes read back at their revision",
                       {"lost": lost[:50]})


def check_linearizable(ops: list[Op]) -> CheckResult:
    res = linearizability.check(ops)
    data: dict[str, Any] = {"revision_errors": res.revision_errors[:20]}
    bad = [p for p in res.partitions if not p.ok]
    if bad:
        p = bad[0]
        data["key"] = p.key
        data["culprit"] = p.culprit.short() if p.culprit else None
        data["excerpt"] = [o.short() for o in p.context]
    return CheckResult("linearizable", res.ok, res.summary(), data)


def check_watches(watchers: list[Watcher], ops: list[Op], current_rev: int, first_rev: int) -> CheckResult:
    acked = {o.revision: o for o in ops if o.outcome == "ok" and o.kind in ("put", "lease-put", "cas")
             and (o.kind != "cas" or o.succeeded)}
    problems: list[str] = []
    for w in watchers:
        wait_for(lambda w=w: w.last_revision >= current_rev, 15, 0.3)
        revs = [e.revision for e in w.events]
        dup = len(revs) - len(set(revs))
        if dup:
            problems.append(f"watcher {w.slot}: {dup} revisions delivered more than once")
        if any(b <= a for a, b in itertools.pairwise(revs)):
            problems.append(f"watcher {w.slot}: revisions out of order")
        seen = set(revs)
        upto = min(w.last_revision, current_rev)
        gaps = [r for r in range(first_rev, upto + 1) if r not in seen]
        if gaps:
            problems.append(f"watcher {w.slot}: {len(gaps)} revisions missing, first {gaps[:5]}")
        if w.last_revision < current_rev:
            problems.append(f"watcher {w.slot}: stuck at revision {w.last_revision} < {current_rev} "
                            f"({w.reconnects} reconnects; last error {w.errors[-1] if w.errors else '-'})")
        by_rev = {e.revision: e for e in w.events}
        wrong = [f"rev {r}: {by_rev[r].key}={by_rev[r].value!r} vs acknowledged {o.key}={o.value!r}"
                 for r, o in acked.items() if r in by_rev and (by_rev[r].key != o.key or by_rev[r].value != o.value)]
        if wrong:
            problems.append(f"watcher {w.slot}: {wrong[:3]}")
    return CheckResult("watch", not problems, "; ".join(problems) or
                       f"{len(watchers)} watchers saw revisions {first_rev}..{current_rev} once, in order",
                       {"events": [len(w.events) for w in watchers], "reconnects": [w.reconnects for w in watchers]})


FATAL = re.compile(r'panic:|"level":"(fatal|panic)"|\bfatal error:|^\S+ F \||Traceback \(most recent')


def scan_logs(members: list[Member], offsets: dict[str, int]) -> CheckResult:
    quotes: list[str] = []
    for m in members:
        try:
            with open(m.log_path, "rb") as f:
                f.seek(offsets.get(m.name, 0))
                data = f.read()
                offsets[m.name] = f.tell()
        except OSError:
            continue
        lines = data.decode(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if FATAL.search(line):
                quotes.append(f"{m.name}: {line[:600]}")
                if line.startswith("panic:"):  # a Go panic: quote the top of its stack too
                    quotes += [f"{m.name}:   {x[:200]}" for x in lines[i + 1:i + 8] if x.strip()]
    return CheckResult("logs", not quotes, f"{len(quotes)} panic/fatal lines" if quotes else "no panic or fatal lines",
                       {"lines": quotes[:20]})
