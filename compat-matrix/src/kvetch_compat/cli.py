"""Command line: `kvetch-compat run | plan | replay | merge`.

run/replay print the plan tree before anything starts, run cells in parallel
(up to the machine's cores) with live progress, write the reports and exit
non-zero when any cell fails unexpectedly: that is the CI gate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import known
from . import report as reportmod
from .plan import Plan, generate
from .versions import Resolved, VersionError, VersionSpec, resolve

DEFAULT_VERSIONS = "etcd@3.4.23,etcd@3.5.1"


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--versions", default=DEFAULT_VERSIONS,
                   help="comma-separated, oldest first: etcd@3.5.1, kvetch@0.1.0, kvetch@<commit>, kvetch@HEAD, x.whl")
    p.add_argument("--scenarios", default=None, help="kind[:variant|:all],... (default: every kind the versions allow)")
    p.add_argument("--members", type=int, default=3, choices=[1, 3, 5])
    p.add_argument("--seed", type=int, default=None, help="plan seed (default: random, printed)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", default="reports/compat", help="directory for report.json, report.md, index.html")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cells run in parallel")
    p.add_argument("--cells", default=None, help="run only these cell ids (comma-separated; CI fan-out)")
    p.add_argument("--keep", action="store_true", help="keep every cell's work dir (failed ones are always kept)")
    p.add_argument("--workdir", default=None, help="parent directory of cell work dirs")
    p.add_argument("--known", default=str(known.DEFAULT_FILE),
                   help="known-failures file (findings that do not fail the gate again); '' for none")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kvetch-compat", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="generate a plan and run it")
    _plan_args(run)
    _run_args(run)
    pl = sub.add_parser("plan", help="print the plan (tree, or --json for CI fan-out)")
    _plan_args(pl)
    pl.add_argument("--json", action="store_true", help="print {plan, include: [{cell}]} for a dynamic CI matrix")
    pl.add_argument("--out", default=None, help="also save the plan as JSON (for replay)")
    rp = sub.add_parser("replay", help="run a saved plan (plan JSON or a report.json) exactly")
    rp.add_argument("plan_file")
    _run_args(rp)
    mg = sub.add_parser("merge", help="merge report.json files of one plan (CI fan-out) into one report")
    mg.add_argument("inputs", nargs="+", help="report.json files or directories holding them")
    mg.add_argument("--report", default="reports/compat")
    return ap


def _seed(s: int | None) -> int:
    return s if s is not None else random.SystemRandom().randrange(2**31)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        if args.cmd == "plan":
            plan = generate(args.versions.split(","), _seed(args.seed), args.members, args.scenarios)
            if args.out:
                Path(args.out).write_text(plan.to_json() + "\n")
            if args.json:
                print(json.dumps({"plan": json.loads(plan.to_json()),
                                  "include": [{"cell": c.id} for c in plan.cells]}, sort_keys=True))
            else:
                print(plan.render())
            return 0
        if args.cmd == "merge":
            return _merge(args)
        if args.cmd == "run":
            plan = generate(args.versions.split(","), _seed(args.seed), args.members, args.scenarios)
            command = " ".join(["kvetch-compat", *(argv if argv is not None else sys.argv[1:])])
        else:
            data = json.loads(Path(args.plan_file).read_text())
            plan = Plan.from_dict(data.get("plan", data))
            command = f"kvetch-compat replay {args.plan_file}"
        full_plan = plan
        if args.cells:
            plan = plan.select([c.strip() for c in args.cells.split("\n" if "\n" in args.cells else ",")])
            if not plan.cells:
                console.print(f"[red]no cell matches {args.cells!r}[/red]")
                return 2
        return execute(plan, args, console, command, full_plan)
    except (VersionError, ValueError) as exc:
        console.print(f"[red]kvetch-compat: {exc}[/red]")
        return 2


def _merge(args: argparse.Namespace) -> int:
    reports = []
    for inp in args.inputs:
        p = Path(inp)
        files = sorted(p.rglob("report.json")) if p.is_dir() else [p]
        reports += [json.loads(f.read_text()) for f in files]
    merged = reportmod.merge(reports)
    reportmod.write(merged, Path(args.report))
    print(reportmod.render_markdown(merged))
    return 1 if merged["gate"] == "fail" else 0


def execute(plan: Plan, args: argparse.Namespace, console: Console, command: str,
            full_plan: Plan | None = None) -> int:
    from .executor import run_cell  # heavy imports only when running

    print(plan.render(), flush=True)
    specs = sorted({v for c in plan.cells for v in c.versions})
    resolved: dict[str, Resolved] = {}
    for v in specs:
        console.print(f"resolving {v} ...", markup=False)
        resolved[v] = resolve(VersionSpec.parse(v))
        console.print(f"  {v}: {resolved[v].version} via {' '.join(resolved[v].server_argv)}", markup=False)
    status: dict[str, str] = {c.id: "queued" for c in plan.cells}
    lock = threading.Lock()
    results: dict[str, dict[str, Any]] = {}

    def progress(cell_id: str, msg: str) -> None:
        with lock:
            status[cell_id] = msg
        if not console.is_terminal:
            console.print(f"[{time.strftime('%H:%M:%S')}] {cell_id}: {msg}", highlight=False, markup=False,
                          soft_wrap=True)

    def table() -> Table:
        t = Table(title=f"kvetch-compat seed {plan.seed}")
        t.add_column("cell")
        t.add_column("state")
        with lock:
            for cid, msg in status.items():
                t.add_row(Text(cid), Text(msg))
        return t

    base = Path(args.workdir) if args.workdir else None
    if base:
        base.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    live_cm: Any = (Live(console=console, refresh_per_second=2, redirect_stdout=False, get_renderable=table)
                    if console.is_terminal else contextlib.nullcontext())
    with live_cm as live, ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(run_cell, c, resolved, base, progress, args.keep): c for c in plan.cells}
        for fut in as_completed(futs):
            cell = futs[fut]
            res = fut.result()
            results[cell.id] = res
            progress(cell.id, f"{res['outcome'].upper()} in {res['duration']}s")
            if live:
                live.update(table())
    known_list = known.load(Path(args.known)) if args.known else []
    cells = [known.apply(results[c.id], known_list) for c in plan.cells]
    meta = {"seed": plan.seed, "versions": plan.versions, "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resolved": {k: {"version": v.version, "argv": v.server_argv} for k, v in resolved.items()}}
    meta["selected"] = [c.id for c in plan.cells]
    rep = reportmod.build(asdict_plan(full_plan or plan), cells, meta)
    out = Path(args.report)
    reportmod.write(rep, out)
    print(reportmod.render_markdown(rep), flush=True)
    console.print(f"reports in {out}/ (report.json, report.md, index.html)")
    return 1 if rep["gate"] == "fail" else 0


def asdict_plan(plan: Plan) -> dict[str, Any]:
    return asdict(plan)
