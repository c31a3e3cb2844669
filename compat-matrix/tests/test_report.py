"""Report rendering pinned by golden files, and merging of fanned-out reports.

Regenerate the golden files after an intended change with
`KVETCH_COMPAT_UPDATE_GOLDEN=1 pytest compat-matrix/tests/test_report.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kvetch_compat import report
from kvetch_compat.plan import generate

GOLDEN = Path(__file__).parent / "golden"
ETCD = ["etcd@3.4.23", "etcd@3.5.1"]


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KVETCH_COMPAT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file"


def _step(n: int, describe: str, outcome: str, checks: list[dict[str, Any]], action_ok: bool = True,
          detail: str = "ok", xfail: str | None = None, logs: list[str] | None = None) -> dict[str, Any]:
    return {"n": n, "action": describe.split()[0], "args": {}, "describe": f"{n:>2}. {describe}",
            "expected_failure": xfail, "expect": {}, "outcome": outcome, "fatal": not action_ok,
            "action_result": {"ok": action_ok, "detail": detail}, "checks": checks,
            "history": ["#1 c0 put(/compat/k1='c0-1') rev=2 ok [0.010, 0.020] via http://127.0.0.1:1"],
            "logs": logs or [], "duration": 1.0, "ops": 1}


OK = {"name": "hashkv", "ok": True, "detail": "HashKV at revision 9: m0=1, m1=1, m2=1", "data": {}}


def sample_report() -> dict[str, Any]:
    plan = generate(ETCD, 7, scenarios="upgrade-rolling:leader-first,downgrade-binary-only,downgrade-cancel")
    ids = [c.id for c in plan.cells]
    cells = [
        {"id": ids[0], "kind": "upgrade-rolling", "variant": "leader-first", "versions": ETCD, "seed": 1,
         "members": 3, "outcome": "pass", "duration": 12.0, "ops": {"total": 10, "ok": 10}, "events": [],
         "steps": [_step(1, "start-cluster m0=etcd@3.4.23", "pass", [OK])], "clients": []},
        {"id": ids[1], "kind": "downgrade-binary-only", "variant": "one-member", "versions": ETCD, "seed": 2,
         "members": 3, "outcome": "fail", "duration": 40.0, "ops": {"total": 5, "ok": 5}, "events": [],
         "steps": [_step(1, "start-cluster m0=etcd@3.5.1", "pass", [OK]),
                   _step(2, "replace member=m0, version=etcd@3.4.23", "fail",
                         [{"name": "alive-healthy", "ok": False, "detail": "m0: process exited (rc=1)", "data": {}}],
                         action_ok=False, detail="m0 did not become healthy <on> 3.4",
                         logs=['m0: {"level":"fatal","msg":"invalid downgrade"}'])],
         "clients": [{"client": "etcdctl-3.5.1", "op": "put", "ok": True, "detail": "OK", "server": "etcd@3.5.1"},
                     {"client": "python-etcd3", "op": "watch", "ok": False, "detail": "x", "server": "etcd@3.5.1"}]},
        {"id": ids[2], "kind": "downgrade-cancel", "variant": plan.cells[2].variant, "versions": ETCD, "seed": 3,
         "members": 3, "outcome": "xfail", "duration": 5.0, "ops": {"total": 1}, "events": [],
         "steps": [_step(1, "downgrade enable 3.4", "xfail", [], action_ok=False, detail="timed out",
                         xfail="policy says so")], "clients": []},
    ]
    meta = {"seed": 7, "versions": ETCD, "command": "kvetch-compat run --seed 7"}
    return report.build(json.loads(plan.to_json()), cells, meta)


def test_gate_and_summary() -> None:
    rep = sample_report()
    assert rep["gate"] == "fail"
    assert rep["summary"]["pass"] == 1 and rep["summary"]["fail"] == 1 and rep["summary"]["xfail"] == 1
    assert len(rep["clients"]) == 2
    # the shape release notes read (kvetch_release.compat): one row per version path
    assert rep["results"][0] == {"from": "3.4.23", "to": "3.5.1", "kind": "upgrade", "passed": True,
                                 "status": "pass", "flavour": "etcd", "scenario": rep["cells"][0]["id"]}
    assert rep["results"][1]["kind"] == "downgrade" and rep["results"][1]["from"] == "3.5.1"
    assert rep["results"][1]["passed"] is False


def test_markdown_golden() -> None:
    _check("report.md", report.render_markdown(sample_report()))


def test_html_golden_and_escaping() -> None:
    html = report.render_html(sample_report())
    assert "&lt;on&gt;" in html and "<on>" not in html
    _check("index.html", html)


def test_merge_combines_fanned_out_reports_in_plan_order(tmp_path: Path) -> None:
    rep = sample_report()
    parts = []
    for c in reversed(rep["cells"]):
        one = report.build(rep["plan"], [c], {"seed": 7, "versions": ETCD})
        parts.append(one)
    merged = report.merge(parts)
    assert [c["id"] for c in merged["cells"]] == [c["id"] for c in rep["cells"]]
    assert merged["gate"] == "fail" and merged["summary"] == rep["summary"]
    report.write(merged, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.md", "index.html"}
    ok_only = report.merge([report.build(rep["plan"], [rep["cells"][0]], {"seed": 7})])
    assert ok_only["gate"] == "pass"
