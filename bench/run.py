"""Side-by-side benchmark: real etcd 3.5.1 and kvetch, same flags, same load,
same run; prints the table with kvetch/etcd ratios and the targets, writes
bench/results/<stamp>.json and .png. ``python bench/run.py --help``."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kvbench import report, servers, workloads
from kvbench.profiling import Profiler
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

HERE = Path(__file__).resolve().parent
SERVERS = ("etcd", "kvetch")


def _ints(s: str) -> list[int]:
    return [int(float(x)) for x in s.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 s per workload, 10k keys for restart, no check perf")
    p.add_argument("--duration", type=float, help="seconds per throughput/watch workload (default 10)")
    p.add_argument("--max-ops", type=int, help="request cap per workload (default 1,000,000)")
    p.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    p.add_argument("--pin", action="store_true",
                   help="pin the server to CPU 0 and the clients to the other CPUs")
    p.add_argument("--only", default="", help="comma list of workload names or prefixes (e.g. put,range10k-1)")
    p.add_argument("--servers", default=",".join(SERVERS), help="comma list (default etcd,kvetch)")
    p.add_argument("--restart-keys", type=_ints, help="key counts for restart (default 100000,1000000)")
    p.add_argument("--restart-value-size", type=int, default=100, help="value bytes for restart keys")
    p.add_argument("--restart-repeats", type=int, default=None,
                   help="restarts per row, the median is reported (default 3, quick 1)")
    p.add_argument("--checkperf", default=None, help="check perf loads, e.g. s,m; 'none' to skip")
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--watch-rate", type=float, default=100.0, help="puts/s during the watch workload")
    p.add_argument("--profile", default="", nargs="?", const="put-16,range10k-1",
                   help="extra pass with py-spy on kvetch for these workloads (default put-16,range10k-1)")
    p.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    p.add_argument("--workdir", type=Path, default=None, help="data dirs (default: a temp dir)")
    p.add_argument("--no-chart", action="store_true")
    a = p.parse_args(argv)
    a.duration = a.duration if a.duration is not None else (3.0 if a.quick else 10.0)
    a.max_ops = a.max_ops if a.max_ops is not None else (50_000 if a.quick else 1_000_000)
    if a.restart_keys is None:
        a.restart_keys = [10_000] if a.quick else [100_000, 1_000_000]
    if a.restart_repeats is None:
        a.restart_repeats = 1 if a.quick else 3
    if a.checkperf is None:
        a.checkperf = "none" if a.quick else "s,m"
    return a


def _selected(name: str, only: str) -> bool:
    if not only:
        return True
    return any(name == o or name.startswith(o) for o in (x.strip() for x in only.split(",")) if o)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def run_one(s: workloads.Settings, wl: workloads.Workload, server: str, status: Any,
            cache: dict[Any, Any], profiler: Profiler | None = None
            ) -> dict[str, Any]:
    if wl.kind == "throughput":
        return workloads.run_throughput(s, wl, server, status, profiler)
    if wl.kind == "watch":
        return workloads.run_watch(s, wl, server, status)
    if wl.kind == "restart":
        return workloads.run_restart(s, wl, server, status, cache)
    if wl.kind == "checkperf":
        return workloads.run_checkperf(s, wl, server, status)
    return workloads.run_cluster(s, wl, server, status, profiler)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    console = Console(width=max(Console().width, 170))
    chosen = [x for x in a.servers.split(",") if x in SERVERS]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tmp = tempfile.TemporaryDirectory(prefix="kvbench-") if a.workdir is None else None
    workdir = Path(tmp.name) if tmp else a.workdir
    s = workloads.Settings(
        workdir=workdir, duration=a.duration, max_ops=a.max_ops, procs=a.procs, pin=a.pin,
        watchers=a.watchers, watch_rate=a.watch_rate, restart_keys=a.restart_keys,
        restart_value_size=a.restart_value_size, restart_repeats=a.restart_repeats,
        checkperf_loads=[] if a.checkperf == "none" else [x for x in a.checkperf.split(",") if x],
    )
    if a.pin:
        os.sched_setaffinity(0, s.client_cpus or {0})
    wls = [w for w in workloads.all_workloads(s) if _selected(w.name, a.only)]
    meta: dict[str, Any] = {
        "stamp": stamp, "commit": _git_commit(), "argv": sys.argv[1:], "quick": a.quick,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(s).items()},
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
        "versions": {srv: servers.server_version(srv) for srv in chosen},
    }
    servers.warm_bytecode()
    meta["pycache"] = str(servers.PYCACHE)
    console.print(f"kvbench {stamp}: {len(wls)} workloads x {chosen}, {a.duration:g}s each, "
                  f"{a.procs} client procs, pin={a.pin}, load average {os.getloadavg()[0]:.1f}")
    rows: list[dict[str, Any]] = []
    cache: dict[Any, Any] = {}
    started = time.monotonic()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            steps = len(wls) * len(chosen)
            task = progress.add_task("benchmarks", total=steps)

            def status(msg: str) -> None:
                progress.update(task, description=msg)

            for wi, wl in enumerate(wls):
                # alternate which server goes first, so a drifting machine load favours neither
                for server in (chosen if wi % 2 == 0 else chosen[::-1]):
                    status(f"{wl.name}/{server}")
                    row = run_one(s, wl, server, status, cache)
                    rows.append(row)
                    if row.get("failed"):
                        console.log(f"[red]{wl.name}/{server} failed:[/] {row['failed']}")
                    progress.advance(task)
                if wl.kind == "restart" and wl.signal_name == "kill":
                    workloads.release_restart_cache(cache)
            profiles: list[dict[str, Any]] = []
            names = [x for x in a.profile.split(",") if x] if a.profile else []
            if names and "kvetch" in chosen:
                prof = Profiler(a.out / f"{stamp}{'-quick' if a.quick else ''}-profiles", set(names), native=a.native)
                ptask = progress.add_task("py-spy", total=len(names))
                for wl in [*workloads.throughput_workloads(), *workloads.cluster_workloads()]:
                    if wl.name in names:
                        progress.update(ptask, description=f"py-spy on kvetch: {wl.name}")
                        run = workloads.run_cluster if wl.kind == "cluster" else workloads.run_throughput
                        r = run(s, wl, "kvetch", status, prof)
                        profiles.append(r)
                        progress.advance(ptask)
    finally:
        workloads.release_restart_cache(cache)
    meta["loadavg_end"] = list(os.getloadavg())
    meta["elapsed_s"] = time.monotonic() - started
    checks = report.evaluate(rows)
    title = (f"kvetch vs etcd 3.5.1 — {stamp}, {a.duration:g}s/workload, load avg "
             f"{meta['loadavg_start'][0]:.1f}→{meta['loadavg_end'][0]:.1f}, pin={a.pin}")
    report.print_report(console, rows, checks, title)
    for pr in profiles:
        if pr.get("profile"):
            p = pr["profile"]
            who = f", {p['member']}" if p.get("member") else ""
            console.print(f"\npy-spy kvetch {pr['workload']}{who} ({pr.get('ops_s', 0):,.0f} ops/s while profiled, "
                          f"{p.get('samples', 0)} samples; raw stacks {p.get('raw')}): top self time")
            for f, _n, pct in p.get("self", [])[:20]:
                console.print(f"  {pct:5.1f}%  {f}")
            console.print("  top total (inclusive):")
            for f, _n, pct in p.get("total", [])[:15]:
                console.print(f"  {pct:5.1f}%  {f}")
    out_json = a.out / f"{stamp}{'-quick' if a.quick else ''}.json"
    meta["profiles"] = profiles
    report.write_json(out_json, meta, rows, checks)
    console.print(f"JSON: {out_json}")
    if not a.no_chart:
        png = out_json.with_suffix(".png")
        if report.write_chart(png, rows, checks, title):
            console.print(f"chart: {png}")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
