"""Multi-process gRPC load generator: each process runs grpc.aio with many
concurrent closed-loop clients, measures per-request latency and its own CPU.

The parent starts ``procs`` processes (spawn), each connects and warms up, all
meet at a barrier, then run until the deadline or their share of ``max_ops``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import struct
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

#: the bytes of a watch value that carry the send time (CLOCK_MONOTONIC, system-wide).
STAMP = struct.Struct("<d")
END_KEY_SUFFIX = b"~end"


@dataclass
class Job:
    """What one load-generator run does (picklable; one copy per process)."""

    endpoint: str
    op: str  # put | get | get-serial | txn | range | watch
    clients: int  # concurrent closed-loop clients in total (watch: watchers)
    duration: float
    max_ops: int
    procs: int
    value_size: int = 256
    key_prefix: bytes = b"bench/k/"
    key_space: int = 10000
    range_end: bytes = b""
    pin_cpus: set[int] | None = None
    watch_rate: float = 100.0  # puts per second for the watch workload
    endpoints: list[str] = field(default_factory=list)  # cluster: process i uses endpoints[i % n]
    extra: dict[str, Any] = field(default_factory=dict)

    def endpoint_for(self, index: int) -> str:
        return self.endpoints[index % len(self.endpoints)] if self.endpoints else self.endpoint


def prefix_end(prefix: bytes) -> bytes:
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\0"


def key_of(prefix: bytes, i: int) -> bytes:
    return prefix + b"%08d" % i


def _requests(job: Job, rng: random.Random) -> list[Any]:
    """A pool of prebuilt requests, cycled through (keeps client CPU low)."""
    from kvetch.api.etcdserverpb import rpc_pb2

    value = os.urandom(job.value_size)
    keys = [key_of(job.key_prefix, rng.randrange(job.key_space)) for _ in range(1024)]
    if job.op == "put":
        return [rpc_pb2.PutRequest(key=k, value=value) for k in keys]
    if job.op in ("get", "get-serial"):
        return [rpc_pb2.RangeRequest(key=k, serializable=job.op == "get-serial") for k in keys]
    if job.op == "txn":
        cmp_mod = rpc_pb2.Compare.CompareTarget.MOD
        less = rpc_pb2.Compare.CompareResult.LESS
        return [rpc_pb2.TxnRequest(
            compare=[rpc_pb2.Compare(key=k, target=cmp_mod, result=less, mod_revision=1 << 62)],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=k, value=value))],
        ) for k in keys]
    if job.op == "range":
        return [rpc_pb2.RangeRequest(key=job.key_prefix, range_end=job.range_end)]
    raise ValueError(job.op)


def _method(job: Job, stub: Any) -> Any:
    return {"put": stub.Put, "get": stub.Range, "get-serial": stub.Range,
            "txn": stub.Txn, "range": stub.Range}[job.op]


async def _closed_loop(job: Job, index: int, clients: int, quota: int, barrier: Any,
                       out: dict[str, Any]) -> None:
    import grpc
    from kvetch.api.etcdserverpb import rpc_pb2_grpc

    from .servers import CHANNEL_OPTIONS

    rng = random.Random(index)
    reqs = _requests(job, rng)
    lat = array("d")
    errors: dict[str, int] = {}
    ops = 0
    async with grpc.aio.insecure_channel(job.endpoint_for(index), options=CHANNEL_OPTIONS) as ch:
        await asyncio.wait_for(ch.channel_ready(), 30)
        call = _method(job, rpc_pb2_grpc.KVStub(ch))
        await call(reqs[0], timeout=30)  # warm-up: connection and server code paths
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        t_start = time.monotonic()
        deadline = t_start + job.duration
        cpu0 = time.process_time()
        per_client = [quota // clients + (1 if c < quota % clients else 0) for c in range(clients)]

        async def client(c: int) -> None:
            nonlocal ops
            n = per_client[c]
            i = rng.randrange(len(reqs))
            perf = time.perf_counter
            while n > 0:
                t0 = perf()
                if t0 > deadline_perf:
                    return
                try:
                    await call(reqs[i % len(reqs)], timeout=30)
                    lat.append(perf() - t0)
                    ops += 1
                except grpc.aio.AioRpcError as e:
                    name = f"{e.code().name}: {e.details()}"[:120]
                    errors[name] = errors.get(name, 0) + 1
                    if e.code() == grpc.StatusCode.UNAVAILABLE:
                        await asyncio.sleep(0.01)
                n -= 1
                i += 1

        deadline_perf = time.perf_counter() + (deadline - time.monotonic())
        await asyncio.gather(*(client(c) for c in range(clients)))
        out.update(ops=ops, errors=errors, lat=lat.tobytes(), t_start=t_start,
                   t_end=time.monotonic(), cpu=time.process_time() - cpu0)


async def _watchers(job: Job, index: int, watchers: int, barrier: Any, out: dict[str, Any]) -> None:
    import grpc
    from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    from .servers import CHANNEL_OPTIONS

    lat = array("d")
    errors: dict[str, int] = {}
    end_key = job.key_prefix + END_KEY_SUFFIX
    async with grpc.aio.insecure_channel(job.endpoint, options=CHANNEL_OPTIONS) as ch:
        await asyncio.wait_for(ch.channel_ready(), 30)
        stub = rpc_pb2_grpc.WatchStub(ch)
        calls = []
        for _ in range(watchers):
            call = stub.Watch()
            await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
                key=job.key_prefix, range_end=job.range_end)))
            resp = await call.read()
            assert resp.created, resp
            calls.append(call)
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        t_start = time.monotonic()
        hard_deadline = t_start + job.duration + job.extra.get("drain_timeout", 30.0)
        cpu0 = time.process_time()
        events = 0

        async def reader(call: Any) -> None:
            nonlocal events
            mono = time.monotonic
            while True:
                try:
                    resp = await asyncio.wait_for(call.read(), max(hard_deadline - mono(), 0.01))
                except (TimeoutError, grpc.aio.AioRpcError) as e:
                    name = "watch timed out before the end key" if isinstance(
                        e, asyncio.TimeoutError) else f"{e.code().name}: {e.details()}"[:120]
                    errors[name] = errors.get(name, 0) + 1
                    return
                now = mono()
                for ev in resp.events:
                    if ev.kv.key == end_key:
                        call.cancel()
                        return
                    lat.append(now - STAMP.unpack_from(ev.kv.value)[0])
                    events += 1

        await asyncio.gather(*(reader(c) for c in calls))
        out.update(ops=events, errors=errors, lat=lat.tobytes(), t_start=t_start,
                   t_end=time.monotonic(), cpu=time.process_time() - cpu0)


async def _watch_putter(job: Job, barrier: Any, out: dict[str, Any]) -> None:
    """Open-loop puts at ``watch_rate`` per second, each value stamped with its send time."""
    import grpc
    from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    from .servers import CHANNEL_OPTIONS

    pad = os.urandom(max(job.value_size - STAMP.size, 0))
    errors: dict[str, int] = {}
    async with grpc.aio.insecure_channel(job.endpoint, options=CHANNEL_OPTIONS) as ch:
        await asyncio.wait_for(ch.channel_ready(), 30)
        stub = rpc_pb2_grpc.KVStub(ch)
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        t_start = time.monotonic()
        cpu0 = time.process_time()
        interval = 1.0 / job.watch_rate
        n = min(job.max_ops, int(job.duration * job.watch_rate))
        pending: set[asyncio.Task[Any]] = set()

        async def put(i: int) -> None:
            try:
                await stub.Put(rpc_pb2.PutRequest(
                    key=key_of(job.key_prefix, i % job.key_space),
                    value=STAMP.pack(time.monotonic()) + pad), timeout=30)
            except grpc.aio.AioRpcError as e:
                name = f"put {e.code().name}: {e.details()}"[:120]
                errors[name] = errors.get(name, 0) + 1

        for i in range(n):
            delay = t_start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(put(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
        await stub.Put(rpc_pb2.PutRequest(key=job.key_prefix + END_KEY_SUFFIX, value=b"end"), timeout=60)
        out.update(ops=0, puts=n - sum(errors.values()), errors=errors, lat=b"", t_start=t_start,
                   t_end=time.monotonic(), cpu=time.process_time() - cpu0)


def _worker(job: Job, index: int, role: str, clients: int, quota: int, barrier: Any, queue: Any) -> None:
    if job.pin_cpus:
        os.sched_setaffinity(0, job.pin_cpus)
    out: dict[str, Any] = {"index": index, "role": role}
    try:
        if role == "watch":
            asyncio.run(_watchers(job, index, clients, barrier, out))
        elif role == "watch-put":
            asyncio.run(_watch_putter(job, barrier, out))
        else:
            asyncio.run(_closed_loop(job, index, clients, quota, barrier, out))
    except BaseException as e:  # report, never hang the parent
        barrier.abort()
        out["fatal"] = f"{type(e).__name__}: {e}"
    queue.put(out)


@dataclass
class LoadResult:
    ops: int
    wall: float
    latencies: list[float]
    errors: dict[str, int]
    client_cpu_percent: float
    extra: dict[str, Any] = field(default_factory=dict)


def run(job: Job, on_start: Any = None) -> LoadResult:
    """Run ``job`` across processes; ``on_start()`` is called when all are past the barrier."""
    ctx = mp.get_context("spawn")
    roles: list[tuple[str, int, int]] = []
    if job.op == "watch":
        procs = max(1, min(job.procs, job.clients))
        share = [job.clients // procs + (1 if p < job.clients % procs else 0) for p in range(procs)]
        roles = [("watch", w, 0) for w in share] + [("watch-put", 0, 0)]
    else:
        procs = max(1, min(job.procs, job.clients))
        share = [job.clients // procs + (1 if p < job.clients % procs else 0) for p in range(procs)]
        quota = [job.max_ops // procs + (1 if p < job.max_ops % procs else 0) for p in range(procs)]
        roles = [("load", share[p], quota[p]) for p in range(procs)]
    barrier = ctx.Barrier(len(roles) + 1)
    queue = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(job, i, role, c, q, barrier, queue), daemon=True)
               for i, (role, c, q) in enumerate(roles)]
    for w in workers:
        w.start()
    with contextlib.suppress(Exception):  # a worker failed to connect: its message comes below
        barrier.wait(timeout=120)
    if on_start is not None:
        on_start()
    outs = []
    for _ in workers:
        outs.append(queue.get(timeout=job.duration + 300))
    for w in workers:
        w.join(10)
    fatal = [o["fatal"] for o in outs if "fatal" in o]
    if fatal:
        raise RuntimeError("load generator failed: " + "; ".join(fatal))
    lat: list[float] = []
    errors: dict[str, int] = {}
    for o in outs:
        a = array("d")
        a.frombytes(o["lat"])
        lat.extend(a)
        for k, v in o["errors"].items():
            errors[k] = errors.get(k, 0) + v
    measured = [o for o in outs if o["role"] != "watch-put"] or outs
    wall = max(o["t_end"] for o in measured) - min(o["t_start"] for o in measured)
    cpu = sum(o["cpu"] for o in outs)
    extra = {"puts": sum(o.get("puts", 0) for o in outs)} if job.op == "watch" else {}
    return LoadResult(ops=sum(o["ops"] for o in outs), wall=wall, latencies=lat, errors=errors,
                      client_cpu_percent=100.0 * cpu / max(wall, 1e-9), extra=extra)
