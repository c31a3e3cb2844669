"""Reports: report.json (machine), report.md (release notes, PR comments) and index.html (matrix).

Rendering is a pure function of the report dict, so golden files pin it.
"""

from __future__ import annotations

import html
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from . import __version__

SCHEMA = 1
OUTCOMES = ["pass", "fail", "known", "xfail", "xpass", "error", "skipped"]
SYMBOL = {"pass": "✅ pass", "fail": "❌ FAIL", "known": "🟧 known failure", "xfail": "🟨 expected failure", "xpass": "🟦 unexpected pass",
          "error": "💥 tool error", "skipped": "⏭ skipped"}
GATE_FAILING = {"fail", "error"}


def build(plan: dict[str, Any], cells: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    summary = dict.fromkeys(OUTCOMES[:6], 0)
    for c in cells:
        summary[c["outcome"]] = summary.get(c["outcome"], 0) + 1
    clients = [r for c in cells for r in c.get("clients", [])]
    from .plan import Plan

    try:
        plan_text = Plan.from_dict(plan).render()
    except (KeyError, TypeError, ValueError):
        plan_text = ""
    return {"schema": SCHEMA, "tool": f"kvetch-compat {__version__}", **meta, "plan": plan,
            "summary": summary, "gate": "fail" if any(c["outcome"] in GATE_FAILING for c in cells) else "pass",
            "cells": cells, "clients": clients, "results": path_results(cells),
            "plan_text": plan_text}


UPGRADE_KINDS = ("upgrade-", "restart-mid-upgrade", "membership-mid-upgrade", "snapshot-catchup")


def path_results(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per version path, in the shape release notes read (kvetch_release.compat):
    {"from", "to", "kind": upgrade|downgrade|mixed, "passed", "status", "flavour", "scenario"}."""
    from .versions import VersionError, VersionSpec, declared_version

    out: list[dict[str, Any]] = []
    for c in cells:
        if len(c["versions"]) < 2:
            continue
        try:
            old, new = (declared_version(VersionSpec.parse(v)) for v in (c["versions"][0], c["versions"][-1]))
        except (VersionError, OSError):
            continue
        kind = ("downgrade" if c["kind"].startswith("downgrade") or c["kind"] == "restart-mid-downgrade"
                else "mixed" if c["kind"] == "mixed-steady" else "upgrade")
        src, dst = (new, old) if kind == "downgrade" else (old, new)
        out.append({"from": src, "to": dst, "kind": kind, "passed": c["outcome"] == "pass", "status": c["outcome"],
                    "flavour": VersionSpec.parse(c["versions"][0]).flavour, "scenario": c["id"]})
    return out


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine per-cell reports of one plan (CI fan-out) into one report."""
    if not reports:
        raise ValueError("nothing to merge")
    seen: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for r in reports:
        for c in r["cells"]:
            seen[c["id"]] = c
    base = reports[0]
    plan = dict(base["plan"])
    order = [c["id"] for c in plan.get("cells", [])]
    cells = sorted(seen.values(), key=lambda c: order.index(c["id"]) if c["id"] in order else len(order))
    meta = {k: base[k] for k in ("seed", "versions", "command") if k in base}
    return build(plan, cells, meta)


def matrix(report: dict[str, Any]) -> tuple[list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """Rows (scenario kind[variant]), columns (version group), cell lookup."""
    rows: list[str] = []
    cols: list[str] = []
    lookup: dict[tuple[str, str], dict[str, Any]] = {}
    for c in report["cells"]:
        row = f"{c['kind']}[{c['variant']}]"
        col = " → ".join(c["versions"])
        if row not in rows:
            rows.append(row)
        if col not in cols:
            cols.append(col)
        lookup[(row, col)] = c
    return rows, cols, lookup


def anchor(cell_id: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in cell_id).strip("-").lower()


def first_failure(cell: dict[str, Any]) -> dict[str, Any] | None:
    for s in cell.get("steps", []):
        if s["outcome"] in ("fail", "known", "xfail"):
            return s
    return None


def failure_text(step: dict[str, Any]) -> str:
    parts = []
    if not step["action_result"].get("ok"):
        parts.append(step["action_result"]["detail"])
    parts += [f"{c['name']}: {c['detail']}" for c in step["checks"] if not c["ok"]]
    return " | ".join(parts)


def replay_command(report: dict[str, Any], cell: dict[str, Any]) -> str:
    return (f"kvetch-compat run --versions {','.join(cell['versions'])} --members {cell['members']} "
            f"--scenarios {cell['kind']}:{cell['variant']} --seed {report.get('seed')} --report reports/repro")


def render_markdown(report: dict[str, Any]) -> str:
    rows, cols, lookup = matrix(report)
    s = report["summary"]
    out = [f"# kvetch-compat report (seed {report.get('seed')})", "",
           f"Gate: **{report['gate'].upper()}** — " + ", ".join(f"{k}: {v}" for k, v in s.items() if v), "",
           f"Versions: {', '.join(report.get('versions', []))}", "",
           "| scenario | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for col in cols:
            c = lookup.get((row, col))
            cells.append(SYMBOL[c["outcome"]] if c else "—")
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    bad = [c for c in report["cells"] if c["outcome"] in ("fail", "known", "xfail", "xpass", "error")]
    if bad:
        out += ["", "## Failures and expected failures", ""]
        for c in bad:
            out.append(f"### {SYMBOL[c['outcome']]}: {c['id']}")
            out.append("")
            if c.get("error"):
                out.append(f"- tool error: `{c['error']}`")
            failed = [s for s in c.get("steps", []) if s["outcome"] in ("fail", "known", "xfail")]
            for st in failed[:5]:
                out.append(f"- step {st['n']} `{st['describe'].strip()}`: {failure_text(st)}")
                if st.get("expected_failure"):
                    out.append(f"  - expected failure: {st['expected_failure']}")
                if st.get("known"):
                    out.append(f"  - known failure: {', '.join(st['known'])} (compat-matrix/FINDINGS.md)")
                for line in st.get("logs", [])[:2]:
                    out.append(f"  - log: `{line[:300]}`")
            out.append(f"- reproduce: `{replay_command(report, c)}`")
            out.append("")
    if report.get("clients"):
        out += ["", "## Clients", "", *client_table_md(report["clients"])]
    return "\n".join(out).rstrip() + "\n"


def client_matrix(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[tuple[str, str], list[dict[str, Any]]]]:
    clients: list[str] = []
    servers: list[str] = []
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["client"] not in clients:
            clients.append(r["client"])
        if r["server"] not in servers:
            servers.append(r["server"])
        cells.setdefault((r["client"], r["server"]), []).append(r)
    return clients, servers, cells


def client_table_md(rows: list[dict[str, Any]]) -> list[str]:
    clients, servers, cells = client_matrix(rows)
    out = ["| client | " + " | ".join(servers) + " |", "|---|" + "---|" * len(servers)]
    for cl in clients:
        vals = []
        for sv in servers:
            ops = cells.get((cl, sv), [])
            failed = [o["op"] for o in ops if not o["ok"]]
            vals.append("—" if not ops else ("✅ " + str(len(ops)) if not failed else "❌ " + ", ".join(failed)))
        out.append(f"| {cl} | " + " | ".join(vals) + " |")
    return out


def _env() -> Environment:
    env = Environment(loader=PackageLoader("kvetch_compat", "templates"),
                      autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
    env.globals.update(anchor=anchor, symbol=SYMBOL, failure_text=failure_text, esc=html.escape)
    return env


def render_html(report: dict[str, Any]) -> str:
    rows, cols, lookup = matrix(report)
    clients, servers, ccells = client_matrix(report.get("clients", []))
    return _env().get_template("index.html.j2").render(
        report=report, rows=rows, cols=cols, lookup=lookup, clients=clients, servers=servers, ccells=ccells,
        replay=lambda c: replay_command(report, c))


def write(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))
    (out_dir / "index.html").write_text(render_html(report))
