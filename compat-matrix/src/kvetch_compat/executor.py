"""Runs one plan cell: starts the cluster, drives the steps under traffic, checks after each step.

The cell's result is plain data (for report.json): each step with its action
outcome, its checks, a history excerpt and the log lines it produced.
"""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import checks
from .cluster import Cluster, wait_for
from .flavours import Flavour, flavour_for
from .history import History
from .plan import Cell, Step
from .rpc import Client, RpcError
from .versions import Resolved
from .workload import PREFIX, Workload

STEP_TIMEOUT = 90.0
HARD_CHECKS = {"alive-healthy"}

Progress = Callable[[str, str], None]


class StepError(Exception):
    """The step's action failed; the cell cannot go on."""


class ReplyLost(StepError):
    """The reply was lost or timed out: the step fails but the state is read back and the cell goes on."""


class CellRunner:
    def __init__(self, cell: Cell, resolved: dict[str, Resolved], workdir: Path,
                 progress: Progress | None = None, max_ops: int = 20000) -> None:
        self.cell = cell
        self.flavours: dict[str, Flavour] = {k: flavour_for(v) for k, v in resolved.items()}
        self.workdir = workdir
        self.progress = progress or (lambda cell, msg: None)
        self.cluster = Cluster(workdir, f"compat-{cell.seed}", cell.options.get("snapshot_count"))
        self.history = History()
        self.rng = random.Random(cell.seed)
        self.workload: Workload | None = None
        self.log_offsets: dict[str, int] = {}
        self.checked_ops = 0
        self.first_rev = 0
        self.max_ops = max_ops
        self.ops_per_step = 400

    # ------------------------------------------------------------ driving
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.cluster.members.values() if m.alive]

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        steps: list[dict[str, Any]] = []
        stop_rest = False
        try:
            for step in self.cell.steps:
                if stop_rest and not step.args.get("recovery"):
                    steps.append(self._skipped(step))
                    continue
                self.progress(self.cell.id, f"step {step.n}/{len(self.cell.steps)}: {step.describe().strip()}")
                res = self.run_step(step)
                steps.append(res)
                if res["outcome"] in ("fail", "xfail") and res.get("fatal"):
                    stop_rest = True
        finally:
            if self.workload:
                self.workload.stop()
            self.cluster.stop_all()
        outcome = _cell_outcome(steps)
        return {
            "id": self.cell.id, "kind": self.cell.kind, "variant": self.cell.variant,
            "versions": self.cell.versions, "seed": self.cell.seed, "members": self.cell.members,
            "outcome": outcome, "duration": round(time.monotonic() - t0, 1), "steps": steps,
            "ops": _op_stats(self.history), "events": self.cluster.events[-200:],
        }

    def _skipped(self, step: Step) -> dict[str, Any]:
        return {"n": step.n, "action": step.action, "args": step.args, "describe": step.describe(),
                "expected_failure": step.expected_failure, "expect": step.expect, "outcome": "skipped",
                "action_result": {"ok": None, "detail": "not run: an earlier step failed fatally"},
                "checks": [], "history": [], "logs": [], "duration": 0.0}

    def run_step(self, step: Step) -> dict[str, Any]:
        t0 = time.monotonic()
        ops_before = len(self.history.ops)
        if self.workload:
            self.workload.grant(self.ops_per_step)
        try:
            detail = self.do_action(step)
            action = {"ok": True, "detail": detail}
        except ReplyLost as exc:
            action = {"ok": False, "detail": str(exc), "reply_lost": True}
        except StepError as exc:
            action = {"ok": False, "detail": str(exc)}
        except Exception as exc:
            action = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        self.progress(self.cell.id, f"step {step.n}: checks")
        results = self.run_checks(step)
        failed = [c for c in results if not c.ok]
        ok = action["ok"] and not failed
        if step.expected_failure:
            outcome = "xpass" if ok else "xfail"
        else:
            outcome = "pass" if ok else "fail"
        fatal = (not action["ok"] and not action.get("reply_lost")) or any(c.name in HARD_CHECKS for c in failed)
        ops = self.history.snapshot()
        excerpt = [o.short() for o in ops[ops_before:]]
        excerpt = excerpt[:15] + (["..."] if len(excerpt) > 30 else []) + (excerpt[-15:] if len(excerpt) > 15 else [])
        log_lines = next((c.data.get("lines", []) for c in results if c.name == "logs"), [])
        return {"n": step.n, "action": step.action, "args": step.args, "describe": step.describe(),
                "expected_failure": step.expected_failure, "expect": step.expect, "outcome": outcome,
                "fatal": fatal, "action_result": action, "checks": [c.to_dict() for c in results],
                "history": excerpt, "logs": log_lines, "duration": round(time.monotonic() - t0, 1),
                "ops": len(ops) - ops_before}

    def _leader_client(self) -> Client:
        leader = self.cluster.wait_leader(15)
        name = leader or next(iter(m.name for m in self.cluster.alive_members()), None)
        if name is None:
            raise StepError("no live member")
        return self.cluster.members[name].client(15)

    def do_action(self, step: Step) -> str:
        a = step.args
        c = self.cluster
        if step.action == "start-cluster":
            for name, spec in a["members"].items():
                c.new_member(name, self.flavours[spec])
            c.start_all(timeout=40)
            if not c.wait_leader(30):
                views = ", ".join(f"{k} says {v}" for k, v in sorted(c.leader_views().items()))
                raise StepError(f"members do not agree on one leader after 30s ({views})")
            with c.members[next(iter(c.members))].client() as cl:
                self.first_rev = cl.put(f"{PREFIX}start".encode(), b"1").header.revision
            self.workload = Workload(self.endpoints, self.history, self.cell.seed,
                                     clients=3 if self.cell.members > 1 else 2, max_ops=self.max_ops)
            if self.cell.kind != "clients":
                self.workload.grant(self.ops_per_step)
                self.workload.start()
            return f"started {len(a['members'])} members; leader {c.leader()}"
        if step.action == "move-leader":
            if not c.move_leader(a["to"], 30):
                raise StepError(f"leader is {c.leader()}, not {a['to']} after MoveLeader")
            return f"leader is {a['to']} (read back from every member's Status)"
        if step.action == "replace":
            name, ver = a["member"], a["version"]
            if not c.replace(name, self.flavours[ver], timeout=40):
                m = c.members[name]
                raise StepError(f"{name} did not become healthy on {ver} (process "
                                f"{'running' if m.alive else 'exited rc=' + str(m.proc.returncode if m.proc else None)})")
            return f"{name} now runs {ver}"
        if step.action == "restart":
            name = a["member"]
            c.stop(name, getattr(signal, a.get("signal", "SIGTERM")))
            if not c.start(name, timeout=40):
                raise StepError(f"{name} did not come back after {a.get('signal')}")
            return f"{name} restarted after {a.get('signal')}"
        if step.action == "stop-member":
            c.stop(a["member"])
            return f"{a['member']} stopped"
        if step.action == "start-member":
            if not c.start(a["member"], timeout=40):
                raise StepError(f"{a['member']} did not start")
            return f"{a['member']} started"
        if step.action == "add-member":
            ok, err = c.add_member(a["member"], self.flavours[a["version"]])
            if not ok:
                raise StepError(err)
            return f"{a['member']} added (confirmed in MemberList) and healthy"
        if step.action == "remove-member":
            ok, err = c.remove_member(a["member"])
            if not ok:
                raise StepError(f"{a['member']} still listed after MemberRemove ({err})")
            return f"{a['member']} removed (confirmed absent from MemberList)" + (f"; reply was {err}" if err else "")
        if step.action == "downgrade":
            return self._downgrade(a)
        if step.action == "wait-downgrade-complete":
            return self._wait_downgrade_complete()
        if step.action == "write-burst":
            return self._burst(int(a["count"]))
        if step.action == "steady":
            time.sleep(min(float(a.get("seconds", 3)), 20))
            return f"traffic for {a.get('seconds')}s"
        if step.action == "clients":
            from .clients import run_clients

            m = next(iter(c.members.values()))
            self.client_results = run_clients(m.client_url, m.flavour, self.workdir)
            bad = [r for r in self.client_results if not r["ok"]]
            self.clients_table = self.client_results
            if bad:
                raise StepError(f"{len(bad)} client operations failed: "
                                + "; ".join(f"{r['client']} {r['op']}: {r['detail'][:120]}" for r in bad[:8]))
            return f"{len(self.client_results)} client operations passed"
        raise StepError(f"unknown action {step.action}")

    def _downgrade(self, a: dict[str, Any]) -> str:
        action, target = a["action"], a.get("target", "")
        version = target if a.get("raw") else (f"{target}.0" if target else "")
        want_err = a.get("expect_error")
        via = a.get("via")
        client = self.cluster.members[via].client(15) if via else self._leader_client()
        with client as cl:
            try:
                resp = cl.downgrade(action, version)
            except RpcError as exc:
                if a.get("any_reply"):
                    return f"Downgrade {action.upper()} {version} via {cl.url}: {exc} (any reply accepted)"
                if want_err and exc.code == want_err:
                    return f"{action}: rejected as expected ({exc})"
                if exc.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN") and not want_err:
                    # the reply is lost but the change may be applied: the checks read the state back
                    raise ReplyLost(f"Downgrade {action.upper()} {version}: reply {exc}; "
                                    "state is read back by the downgrade-state check") from None
                raise StepError(f"Downgrade {action.upper()} {version}: {exc}") from None
        if want_err:
            raise StepError(f"Downgrade {action.upper()}: expected {want_err}, got success (version {resp.version})")
        return f"Downgrade {action.upper()} {version}: ok, reply version {resp.version}"

    def _wait_downgrade_complete(self) -> str:
        members = [m for m in self.cluster.alive_members() if m.flavour.supports_downgrade_api]

        def done() -> bool:
            for m in members:
                info = None
                with m.client(3) as cl:
                    st = cl.status()
                    info = st.downgradeInfo if st.HasField("downgradeInfo") else None
                ds = m.flavour.downgrade_state(m.client_url, m.peer_url, info)
                if ds is None or ds.enabled:
                    return False
            return True

        if not members:
            return "no member exposes downgrade state (all on versions without the Downgrade API)"
        if not wait_for(done, 30, 1.0):
            raise StepError("downgrade still enabled 30s after every member runs the target version")
        return "downgrade completed (disabled on every member)"

    def _burst(self, count: int) -> str:
        eps = self.endpoints()
        done = [0]
        lock = threading.Lock()
        deadline = time.monotonic() + 120

        def worker(i: int) -> None:
            with Client(eps[i % len(eps)], timeout=5) as cl:
                for j in range(i, count, 4):
                    if time.monotonic() > deadline:
                        return
                    op = self.history.invoke(f"burst{i}", "put", f"{PREFIX}burst/{j}", value=f"b{j}", endpoint=cl.url)
                    try:
                        r = cl.put(f"{PREFIX}burst/{j}".encode(), f"b{j}".encode())
                        self.history.complete(op, "ok", revision=r.header.revision)
                        with lock:
                            done[0] += 1
                    except RpcError as exc:
                        self.history.complete(op, "unknown", error=str(exc))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if done[0] < count:
            raise StepError(f"only {done[0]}/{count} burst writes acknowledged")
        return f"{count} writes while a member was down"

    # ------------------------------------------------------------ checks
    def run_checks(self, step: Step) -> list[checks.CheckResult]:
        exp = step.expect
        c = self.cluster
        out: list[checks.CheckResult] = []
        if step.action == "clients":
            out.append(checks.scan_logs(list(c.members.values()) + c.removed, self.log_offsets))
            return out
        alive = checks.check_alive(c, exp)
        out.append(alive)
        if alive.ok:
            c.refresh_ids()
            out += checks.check_versions(c, exp)
            dg = checks.check_downgrade(c, exp)
            if dg:
                out.append(dg)
            out.append(checks.check_member_list(c, exp))
            out.append(checks.check_leader(c, exp))
            out.append(checks.check_progress(c, exp, f"s{step.n}"))
            hd = checks.check_hash_and_data(c, exp)
            out += hd
            ops = self.history.snapshot()
            out.append(checks.check_acknowledged(c, exp, ops, self.checked_ops))
            self.checked_ops = len(ops)
            out.append(checks.check_linearizable(ops))
            rev = hd[0].data.get("revision", 0)
            if self.workload and self.workload.threads and rev:
                out.append(checks.check_watches(self.workload.watchers, ops, rev, self.first_rev))
        out.append(checks.scan_logs(list(c.members.values()) + c.removed, self.log_offsets))
        return out


def _cell_outcome(steps: list[dict[str, Any]]) -> str:
    outs = [s["outcome"] for s in steps]
    if "fail" in outs:
        return "fail"
    if "xfail" in outs:
        return "xfail"
    if "xpass" in outs:
        return "xpass"
    return "pass"


def _op_stats(h: History) -> dict[str, int]:
    stats: dict[str, int] = {"total": len(h.ops)}
    for o in h.ops:
        stats[o.outcome] = stats.get(o.outcome, 0) + 1
    return stats


def run_cell(cell: Cell, resolved: dict[str, Resolved], base: Path | None = None,
             progress: Progress | None = None, keep: bool = False, max_ops: int = 20000) -> dict[str, Any]:
    wd = Path(tempfile.mkdtemp(prefix="kvc-", dir=base))
    runner = CellRunner(cell, resolved, wd, progress, max_ops)
    try:
        result = runner.run()
    except Exception as exc:  # a bug in the tool itself: report it as a failed cell
        result = {"id": cell.id, "kind": cell.kind, "variant": cell.variant, "versions": cell.versions,
                  "seed": cell.seed, "members": cell.members, "outcome": "error", "duration": 0,
                  "steps": [], "error": f"{type(exc).__name__}: {exc}", "ops": {}, "events": []}
        runner.cluster.stop_all()
    result["clients"] = getattr(runner, "client_results", [])
    result["workdir"] = str(wd)
    if not keep:
        if result["outcome"] == "pass":
            shutil.rmtree(wd, ignore_errors=True)
        else:  # keep the member logs for the report's readers, drop the data dirs (etcd preallocates 64 MB WALs)
            for data in wd.glob("*.data"):
                shutil.rmtree(data, ignore_errors=True)
    return result
