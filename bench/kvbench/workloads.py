"""The workloads: what each one does to one server, and the numbers it returns.

Every workload starts a fresh member (fresh data dir, fsync on), for each
server in turn, so both servers see identical conditions in the same run.
A result is a flat dict (one row per workload and server) that the report,
the JSON history and the chart read.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

from . import loadgen
from .servers import CHANNEL_OPTIONS, Member, Sampler, free_port

MAX_TXN_OPS = 128


@dataclass
class Settings:
    """Knobs shared by all workloads (from the command line)."""

    workdir: Path
    duration: float = 10.0
    max_ops: int = 1_000_000
    procs: int = 4
    pin: bool = False
    value_size: int = 256
    key_space: int = 10_000
    range_keys: int = 10_000
    range_value_size: int = 300
    watchers: int = 100
    watch_rate: float = 100.0
    restart_keys: list[int] = field(default_factory=lambda: [100_000])
    restart_value_size: int = 100
    restart_repeats: int = 3
    checkperf_loads: list[str] = field(default_factory=lambda: ["s", "m"])

    @property
    def server_cpus(self) -> set[int] | None:
        return {0} if self.pin else None

    @property
    def client_cpus(self) -> set[int] | None:
        ncpu = os.cpu_count() or 1
        return (set(range(1, ncpu)) or {0}) if self.pin else None


@dataclass
class Workload:
    name: str
    kind: str  # throughput | watch | restart | checkperf | cluster
    describe: str
    op: str = ""
    clients: int = 1
    preload: str = ""  # "" | "keys" (key space, value_size) | "range" (range_keys x range_value_size)
    param: Any = None  # restart: key count; checkperf: load name
    signal_name: str = ""


def throughput_workloads() -> list[Workload]:
    return [
        Workload("put-1", "throughput", "put, 256 B values, 1 client", "put", 1),
        Workload("put-16", "throughput", "put, 256 B values, 16 clients", "put", 16),
        Workload("put-64", "throughput", "put, 256 B values, 64 clients", "put", 64),
        Workload("get-linear-16", "throughput", "linearizable get of one key, 16 clients", "get", 16, "keys"),
        Workload("get-serial-16", "throughput", "serializable get of one key, 16 clients", "get-serial", 16,
                 "keys"),
        Workload("txn-16", "throughput", "txn: compare(mod_revision) + put, 16 clients", "txn", 16),
        Workload("range10k-1", "throughput", "range over 10,000 keys of 300 B, 1 client", "range", 1, "range"),
        Workload("range10k-4", "throughput", "range over 10,000 keys of 300 B, 4 clients", "range", 4, "range"),
    ]


def all_workloads(s: Settings) -> list[Workload]:
    out = throughput_workloads()
    out.append(Workload("watch-100", "watch", f"{s.watchers} watchers on a prefix, {s.watch_rate:g} puts/s",
                        "watch", s.watchers))
    for n in s.restart_keys:
        for sig in ("term", "kill"):
            out.append(Workload(f"restart-{sig}-{_count(n)}", "restart",
                                f"time to first get after SIG{sig.upper()}, {n:,} keys",
                                param=n, signal_name=sig))
    for load in s.checkperf_loads:
        out.append(Workload(f"checkperf-{load}", "checkperf", f"etcdctl check perf --load {load}", param=load))
    out += cluster_workloads()
    return out


def cluster_workloads() -> list[Workload]:
    return [
        Workload("cluster3-put", "cluster", "3-member cluster, put, 16 clients", "put", 16),
        Workload("cluster3-get", "cluster", "3-member cluster, linearizable get, 16 clients", "get", 16, "keys"),
    ]


def _count(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# ---------------------------------------------------------------- loading


async def _load_async(endpoint: str, prefix: bytes, count: int, value_size: int, concurrency: int = 8,
                      progress: Any = None) -> None:
    value = os.urandom(value_size)
    batches = [(start, min(start + MAX_TXN_OPS, count)) for start in range(0, count, MAX_TXN_OPS)]
    async with grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS) as ch:
        stub = rpc_pb2_grpc.KVStub(ch)
        it = iter(batches)

        async def loader() -> None:
            for lo, hi in it:
                req = rpc_pb2.TxnRequest(success=[
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=loadgen.key_of(prefix, i), value=value))
                    for i in range(lo, hi)])
                for attempt in range(5):
                    try:
                        await stub.Txn(req, timeout=60)
                        break
                    except grpc.aio.AioRpcError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.5)
                if progress is not None:
                    progress(hi - lo)

        await asyncio.gather(*(loader() for _ in range(concurrency)))


def load_keys(endpoint: str, prefix: bytes, count: int, value_size: int, progress: Any = None) -> float:
    """Write ``count`` keys in txns of 128 puts; keys/s."""
    t0 = time.monotonic()
    asyncio.run(_load_async(endpoint, prefix, count, value_size, progress=progress))
    return count / max(time.monotonic() - t0, 1e-9)


# ---------------------------------------------------------------- helpers


def _pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    idx = min(len(sorted_vals) - 1, max(0, round(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[idx]


def _row(wl: Workload, server: str) -> dict[str, Any]:
    return {"workload": wl.name, "kind": wl.kind, "server": server, "describe": wl.describe,
            "loadavg": list(os.getloadavg())}


def _fill_load(row: dict[str, Any], res: loadgen.LoadResult) -> None:
    lat = sorted(res.latencies)
    row.update(ops=res.ops, wall_s=res.wall, ops_s=res.ops / max(res.wall, 1e-9),
               p50_ms=_pct(lat, 50) * 1e3, p99_ms=_pct(lat, 99) * 1e3,
               max_ms=(lat[-1] * 1e3 if lat else float("nan")),
               errors=sum(res.errors.values()), error_samples=res.errors,
               client_cpu_pct=res.client_cpu_percent, **res.extra)


def log_tail(m: Member, lines: int = 6) -> list[str]:
    """The last warnings/errors of a member's log (kept in the row when something went wrong)."""
    path = m.workdir / f"{m.kind}.log"
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    bad = [ln for ln in text if '"level":"info"' not in ln and '"level":"debug"' not in ln]
    return [ln[:300] for ln in bad[-lines:]]


def _member(s: Settings, wl: Workload, server: str) -> Member:
    d = s.workdir / wl.name / server
    shutil.rmtree(d, ignore_errors=True)
    return Member(server, d, pin_cpus=s.server_cpus)


# ---------------------------------------------------------------- runners


def run_throughput(s: Settings, wl: Workload, server: str, status: Any = print,
                   profiler: Any = None) -> dict[str, Any]:
    row = _row(wl, server)
    m = _member(s, wl, server)
    try:
        row["startup_s"] = m.start()
        job = loadgen.Job(endpoint=m.endpoint, op=wl.op, clients=wl.clients, duration=s.duration,
                          max_ops=s.max_ops, procs=s.procs, value_size=s.value_size,
                          key_space=s.key_space, pin_cpus=s.client_cpus)
        if wl.preload == "keys":
            status(f"{wl.name}/{server}: loading {s.key_space:,} keys")
            load_keys(m.endpoint, job.key_prefix, s.key_space, s.value_size)
        elif wl.preload == "range":
            status(f"{wl.name}/{server}: loading {s.range_keys:,} keys of {s.range_value_size} B")
            job.key_prefix = b"bench/range/"
            job.range_end = loadgen.prefix_end(job.key_prefix)
            load_keys(m.endpoint, job.key_prefix, s.range_keys, s.range_value_size)
        assert m.proc is not None
        status(f"{wl.name}/{server}: running {s.duration:g}s")
        with Sampler(m.proc.pid) as smp:
            handle = None

            def on_start() -> None:
                nonlocal handle
                smp.mark()
                if profiler is not None:
                    handle = profiler.start(m.proc.pid if m.proc else 0, wl.name)

            res = loadgen.run(job, on_start=on_start)
            row["server_cpu_pct"] = smp.cpu_percent()
            row["server_rss_peak"] = smp.peak_rss
            if profiler is not None and handle is not None:
                row["profile"] = profiler.finish(handle)
        _fill_load(row, res)
        if wl.op == "range" and res.ops:
            row["bytes_per_range"] = s.range_keys * s.range_value_size
    except Exception as e:  # a failing server is a result, not a crash of the harness
        row["failed"] = f"{type(e).__name__}: {e}"
    finally:
        if row.get("failed") or row.get("errors"):
            row["log_tail"] = log_tail(m)
        m.destroy()
    return row


def run_watch(s: Settings, wl: Workload, server: str, status: Any = print) -> dict[str, Any]:
    row = _row(wl, server)
    m = _member(s, wl, server)
    try:
        row["startup_s"] = m.start()
        prefix = b"bench/watch/"
        job = loadgen.Job(endpoint=m.endpoint, op="watch", clients=wl.clients, duration=s.duration,
                          max_ops=s.max_ops, procs=s.procs, value_size=s.value_size, key_prefix=prefix,
                          range_end=loadgen.prefix_end(prefix), key_space=s.key_space,
                          pin_cpus=s.client_cpus, watch_rate=s.watch_rate)
        assert m.proc is not None
        status(f"{wl.name}/{server}: {wl.clients} watchers, {s.duration:g}s")
        with Sampler(m.proc.pid) as smp:
            res = loadgen.run(job, on_start=smp.mark)
            row["server_cpu_pct"] = smp.cpu_percent()
            row["server_rss_peak"] = smp.peak_rss
        _fill_load(row, res)
        expected = res.extra.get("puts", 0) * wl.clients
        row["events_expected"] = expected
        row["events_missed"] = max(expected - res.ops, 0)
        row["errors"] += row["events_missed"]
    except Exception as e:
        row["failed"] = f"{type(e).__name__}: {e}"
    finally:
        m.destroy()
    return row


def _timed_start(m: Member) -> tuple[float, int]:
    """Spawn and wait for the first successful get; (seconds, peak RSS during start)."""
    m.spawn()
    assert m.proc is not None
    with Sampler(m.proc.pid, interval=0.02) as smp:
        t = m.wait_ready(timeout=600)
        return t, smp.peak_rss


def run_restart(s: Settings, wl: Workload, server: str, status: Any = print,
                cache: dict[Any, Any] | None = None) -> dict[str, Any]:
    """Load N keys, stop with the signal, time the start up to the first successful get.

    The loaded data dir is kept in ``cache`` so SIGTERM and SIGKILL rows share one load."""
    row = _row(wl, server)
    n = int(wl.param)
    row["keys"] = n
    key = (server, n)
    cache = cache if cache is not None else {}
    m: Member | None = cache.get(key)
    try:
        if m is None:
            m = _member(s, wl, server)
            m.start()
            status(f"{wl.name}/{server}: loading {n:,} keys of {s.restart_value_size} B")
            rate = load_keys(m.endpoint, b"bench/restart/", n, s.restart_value_size)
            cache[key] = m
            cache[(key, "load")] = rate
        row["load_keys_s"] = cache.get((key, "load"))
        if m.proc is None or m.proc.poll() is not None:
            m.start(timeout=600)
        sig = signal.SIGTERM if wl.signal_name == "term" else signal.SIGKILL
        row["db_bytes"] = m.disk_bytes()
        times: list[float] = []
        peaks: list[int] = []
        stops: list[float] = []
        for i in range(max(1, s.restart_repeats)):
            status(f"{wl.name}/{server}: SIG{wl.signal_name.upper()} and restart ({i + 1}/{s.restart_repeats})")
            if m.proc is None or m.proc.poll() is not None:
                m.start(timeout=600)
            stops.append(m.stop(sig))
            t, peak = _timed_start(m)
            times.append(t)
            peaks.append(peak)
        # the median of the repeats: one slow start on a busy machine does not decide the row
        row.update(restart_s=sorted(times)[len(times) // 2], restart_samples_s=times,
                   server_rss_peak=max(peaks), stop_s=max(stops), errors=0)
        # the data must still be there
        with grpc.insecure_channel(m.endpoint, options=CHANNEL_OPTIONS) as ch:
            resp = rpc_pb2_grpc.KVStub(ch).Range(rpc_pb2.RangeRequest(
                key=b"bench/restart/", range_end=loadgen.prefix_end(b"bench/restart/"), count_only=True),
                timeout=120)
        row["keys_after"] = resp.count
        if resp.count != n:
            row["errors"] = abs(n - resp.count)
    except Exception as e:
        row["failed"] = f"{type(e).__name__}: {e}"
    finally:
        if m is not None:
            m.stop(signal.SIGTERM)  # never leave one server running while the other is measured
    return row


def release_restart_cache(cache: dict[Any, Any]) -> None:
    for v in list(cache.values()):
        if isinstance(v, Member):
            v.destroy()
    cache.clear()


_THROUGHPUT = re.compile(r"Throughput (?:is|too low:) (\d+) writes/s")
_SLOWEST = re.compile(r"(?:Slowest request took(?: too long:)?) ([0-9.]+)s")
_STDDEV = re.compile(r"Stddev (?:is|too high:) ([0-9.]+)s")


def run_checkperf(s: Settings, wl: Workload, server: str, status: Any = print) -> dict[str, Any]:
    row = _row(wl, server)
    m = _member(s, wl, server)
    try:
        m.start()
        assert m.proc is not None
        status(f"{wl.name}/{server}: etcdctl check perf --load {wl.param} (about 60 s)")
        etcdctl = shutil.which("etcdctl") or "etcdctl"
        cmd = [etcdctl, f"--endpoints={m.endpoint}", "check", "perf", f"--load={wl.param}"]
        env = {**os.environ, "ETCDCTL_API": "3"}
        with Sampler(m.proc.pid) as smp:
            pin = s.client_cpus
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env,
                                  preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None)
            row["server_cpu_pct"] = smp.cpu_percent()
            row["server_rss_peak"] = smp.peak_rss
        out = proc.stdout + proc.stderr
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        row["passed"] = proc.returncode == 0 and "PASS" in lines
        row["output"] = [ln for ln in lines if "%" not in ln][-8:]
        if (mt := _THROUGHPUT.search(out)):
            row["ops_s"] = float(mt.group(1))
        if (ms := _SLOWEST.search(out)):
            row["max_ms"] = float(ms.group(1)) * 1e3
        if (md := _STDDEV.search(out)):
            row["stddev_ms"] = float(md.group(1)) * 1e3
        row["errors"] = sum(1 for ln in lines if ln.startswith("FAIL: ERROR"))
    except Exception as e:
        row["failed"] = f"{type(e).__name__}: {e}"
        row["passed"] = False
    finally:
        m.destroy()
    return row


def _leader(members: list[Member]) -> Member | None:
    """The member whose Status names itself leader (None if no one answers)."""
    for m in members:
        try:
            with grpc.insecure_channel(m.endpoint) as ch:
                st = rpc_pb2_grpc.MaintenanceStub(ch).Status(rpc_pb2.StatusRequest(), timeout=5)
        except grpc.RpcError:
            continue
        if st.leader and st.leader == st.header.member_id:
            return m
    return None


def run_cluster(s: Settings, wl: Workload, server: str, status: Any = print,
                profiler: Any = None) -> dict[str, Any]:
    """A 3-member cluster on loopback; the client processes spread over the members.

    With a profiler, the leader is the member profiled (it does the most work)."""
    row = _row(wl, server)
    base = s.workdir / wl.name / server
    shutil.rmtree(base, ignore_errors=True)
    peers = {f"m{i}": free_port() for i in range(3)}
    initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in peers.items())
    members = [Member(server, base / n, pin_cpus=s.server_cpus, name=n, peer_port=p, initial_cluster=initial)
               for n, p in peers.items()]
    try:
        status(f"{wl.name}/{server}: starting 3 members")
        for m in members:
            m.spawn()
        try:
            row["startup_s"] = max(m.wait_ready(timeout=60) for m in members)
        except (RuntimeError, TimeoutError) as e:
            if server == "kvetch":
                row["not_available"] = f"no 3-member kvetch cluster ({e})"[:200]
                return row
            raise
        job = loadgen.Job(endpoint=members[0].endpoint, op=wl.op, clients=wl.clients, duration=s.duration,
                          max_ops=s.max_ops, procs=max(s.procs, 3), value_size=s.value_size,
                          key_space=s.key_space, pin_cpus=s.client_cpus,
                          endpoints=[m.endpoint for m in members])
        if wl.preload == "keys":
            status(f"{wl.name}/{server}: loading {s.key_space:,} keys")
            load_keys(members[0].endpoint, job.key_prefix, s.key_space, s.value_size)
        status(f"{wl.name}/{server}: running {s.duration:g}s")
        leader = _leader(members) if profiler is not None else None
        with Sampler([m.proc.pid for m in members if m.proc]) as smp:
            handle = None

            def on_start() -> None:
                nonlocal handle
                smp.mark()
                if leader is not None and leader.proc is not None:
                    handle = profiler.start(leader.proc.pid, wl.name)

            res = loadgen.run(job, on_start=on_start)
            row["server_cpu_pct"] = smp.cpu_percent()
            row["server_rss_peak"] = smp.peak_rss
            if handle is not None:
                row["profile"] = profiler.finish(handle)
                row["profile"]["member"] = f"{leader.name} (leader)" if leader else "?"
        _fill_load(row, res)
    except Exception as e:
        row["failed"] = f"{type(e).__name__}: {e}"
    finally:
        for m in members:
            if row.get("failed") or row.get("errors"):
                row.setdefault("log_tail", []).extend(log_tail(m, 3))
            if m.proc is not None and m.proc.poll() is not None and m.proc.returncode != -9:
                row.setdefault("exited", []).append(f"{m.name}: {m.proc.returncode}")
            m.destroy()
    return row
