"""Targets (kvetch / etcd from the same run), the rich table, the JSON history
file and the PNG chart of the ratios."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

MB = 1 << 20


@dataclass
class Check:
    """One target: ``ratio`` (kvetch/etcd, or a growth factor) against ``limit``."""

    workload: str
    label: str  # shown in the table
    ratio: float | None
    limit: float
    higher_is_better: bool
    met: bool | None  # None: could not be measured
    note: str = ""


def _get(rows: list[dict[str, Any]], wl: str, server: str) -> dict[str, Any] | None:
    for r in rows:
        if r["workload"] == wl and r["server"] == server:
            return r
    return None


def _ratio(k: dict[str, Any] | None, e: dict[str, Any] | None, field: str) -> float | None:
    if not k or not e or k.get("failed") or e.get("failed"):
        return None
    kv, ev = k.get(field), e.get(field)
    if kv is None or ev is None or not isinstance(kv, (int, float)) or not isinstance(ev, (int, float)):
        return None
    if ev == 0 or math.isnan(ev) or math.isnan(kv):
        return None
    return float(kv) / float(ev)


def _check(wl: str, label: str, ratio: float | None, limit: float, higher: bool, note: str = "") -> Check:
    met = None if ratio is None else (ratio >= limit if higher else ratio <= limit)
    return Check(wl, label, ratio, limit, higher, met, note)


def evaluate(rows: list[dict[str, Any]]) -> list[Check]:
    checks: list[Check] = []
    names = list(dict.fromkeys(r["workload"] for r in rows))
    restart_counts = sorted({r["keys"] for r in rows if r["kind"] == "restart" and "keys" in r})
    for wl in names:
        k, e = _get(rows, wl, "kvetch"), _get(rows, wl, "etcd")
        kind = (k or e or {}).get("kind")
        if kind in ("throughput", "cluster"):
            checks.append(_check(wl, "ops/s ≥ 0.5", _ratio(k, e, "ops_s"), 0.5, True))
            if wl.startswith("range10k"):
                checks.append(_check(wl, "peak RSS ≤ 1.0", _ratio(k, e, "server_rss_peak"), 1.0, False))
        elif kind == "watch":
            checks.append(_check(wl, "p99 ≤ 2.0", _ratio(k, e, "p99_ms"), 2.0, False))
        elif kind == "restart" and k is not None:
            n = k.get("keys")
            if n == restart_counts[0]:
                checks.append(_check(wl, "time ≤ 1.0", _ratio(k, e, "restart_s"), 1.0, False))
            elif n is not None:
                base = _get(rows, wl.replace(_suffix(n), _suffix(restart_counts[0])), "kvetch")
                linear = n / restart_counts[0]
                growth = _ratio(k, base, "restart_s")
                checks.append(_check(wl, f"growth < x{linear:g}", growth, linear, False,
                                     note=f"kvetch t({_suffix(n)})/t({_suffix(restart_counts[0])})"))
        elif kind == "checkperf" and wl == "checkperf-m" and k is not None:
            passed = k.get("passed")
            checks.append(Check(wl, "kvetch passes", None, 1, True, None if "passed" not in k else bool(passed)))
    return checks


def _suffix(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return fmt.format(v)


def _result(r: dict[str, Any]) -> str:
    if r.get("failed"):
        return f"[red]failed: {r['failed'][:60]}[/]"
    if r.get("not_available"):
        return "[yellow]not available[/]"
    kind = r["kind"]
    if kind in ("throughput", "cluster"):
        return f"{r['ops_s']:,.0f} ops/s"
    if kind == "watch":
        return f"{r['ops_s']:,.0f} ev/s"
    if kind == "restart":
        return f"{r['restart_s']:.2f} s to 1st get"
    if kind == "checkperf":
        verdict = "[green]PASS[/]" if r.get("passed") else "[red]FAIL[/]"
        return f"{verdict} {_f(r.get('ops_s'), '{:,.0f}')} w/s"
    return "-"


def _checks_text(cs: list[Check]) -> str:
    out = []
    for c in cs:
        mark = "[yellow]?[/]" if c.met is None else ("[green]met[/]" if c.met else "[red]MISSED[/]")
        ratio = "" if c.ratio is None else f" ({c.ratio:.2f})"
        out.append(f"{c.label}{ratio} {mark}")
    return "\n".join(out)


def table(rows: list[dict[str, Any]], checks: list[Check], title: str) -> Table:
    t = Table(title=title, show_lines=True)
    for col, just in [("workload", "left"), ("server", "left"), ("result", "right"), ("p50 ms", "right"),
                      ("p99 ms", "right"), ("max ms", "right"), ("err", "right"),
                      ("peak RSS MB", "right"), ("srv CPU %", "right"), ("cli CPU %", "right"),
                      ("kvetch/etcd", "right"), ("target", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    names = list(dict.fromkeys(r["workload"] for r in rows))
    primary = {"throughput": "ops_s", "cluster": "ops_s", "watch": "p99_ms", "restart": "restart_s", "checkperf": "ops_s"}
    for wl in names:
        group = sorted((r for r in rows if r["workload"] == wl), key=lambda r: r["server"] != "etcd")
        cs = [c for c in checks if c.workload == wl]
        e, k = _get(rows, wl, "etcd"), _get(rows, wl, "kvetch")
        ratio = _ratio(k, e, primary.get(group[0]["kind"], ""))
        for i, r in enumerate(group):
            last = i == len(group) - 1
            t.add_row(
                wl if i == 0 else "", r["server"], _result(r), _f(r.get("p50_ms"), "{:.2f}"),
                _f(r.get("p99_ms"), "{:.2f}"), _f(r.get("max_ms"), "{:.1f}"),
                _f(r.get("errors"), "{:d}"), _f((r.get("server_rss_peak") or 0) / MB or None, "{:.0f}"),
                _f(r.get("server_cpu_pct"), "{:.0f}"), _f(r.get("client_cpu_pct"), "{:.0f}"),
                _f(ratio, "{:.2f}") if last else "", _checks_text(cs) if last else "",
            )
    return t


def print_report(console: Console, rows: list[dict[str, Any]], checks: list[Check], title: str) -> None:
    console.print(table(rows, checks, title))
    met = sum(1 for c in checks if c.met)
    missed = [c for c in checks if c.met is False]
    unknown = [c for c in checks if c.met is None]
    console.print(f"targets: {met} met, {len(missed)} missed, {len(unknown)} not measured")
    for c in missed:
        got = _f(c.ratio, "{:.2f}") if c.ratio is not None else "FAIL"
        console.print(f"  [red]missed[/] {c.workload}: {c.label} (got {got}) {c.note}")
    for r in rows:
        if r.get("not_available"):
            console.print(f"  not available {r['workload']}/{r['server']}: {r['not_available']}")
        if r.get("kind") == "checkperf" and r.get("output"):
            console.print(f"  check perf {r['workload']}/{r['server']}: " + " | ".join(r["output"][-4:]))
        if r.get("error_samples"):
            console.print(f"  errors {r['workload']}/{r['server']}: {r['error_samples']}")
        if r.get("profile") and r["profile"].get("self"):
            p = r["profile"]
            console.print(f"\npy-spy {r['workload']}/{r['server']}: top self time "
                          f"({p['samples']} samples, raw stacks {p['raw']})")
            for f, _n, pct in p["self"][:15]:
                console.print(f"  {pct:5.1f}%  {f}")


def write_json(path: Path, meta: dict[str, Any], rows: list[dict[str, Any]], checks: list[Check]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "rows": rows, "targets": [asdict(c) for c in checks]}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def write_chart(path: Path, rows: list[dict[str, Any]], checks: list[Check], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    items = [c for c in checks if c.ratio is not None]
    if not items:
        return False
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(items) + 1.5))
    labels = [f"{c.workload}: {c.label}" for c in items]
    values = [c.ratio or 0.0 for c in items]
    colors = ["#2e7d32" if c.met else "#c62828" for c in items]
    y = list(range(len(items)))
    ax.barh(y, values, color=colors)
    for yi, c in zip(y, items, strict=True):
        ax.plot([c.limit, c.limit], [yi - 0.4, yi + 0.4], color="black", linewidth=2)
        ax.text(c.ratio or 0.0, yi, f" {c.ratio:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("kvetch / etcd (growth factor for restart at more keys); black tick = target; "
                  "green met, red missed")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
