"""Expensive-request traces in etcd's words, and OpenTelemetry spans reaching a real OTLP collector.

The collector is a real gRPC server implementing OTLP's TraceService (from
opentelemetry-proto) in this process; spans travel over loopback through the
real OTLP/gRPC exporter.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from kvetch.obs import log as klog
from kvetch.obs import tracing
from kvetch.obs.metrics import METRICS


@pytest.fixture
def logfile(tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "k.log"
    klog.setup_logging("info", [str(out)])
    yield out
    klog.setup_logging("info", ["stderr"])


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_trace_logged_only_when_long_with_etcds_fields(logfile: Path) -> None:
    fast = tracing.Trace("range", fields=[("range_begin", "/a")])
    fast.step("range keys from in-memory index tree")
    assert fast.log_if_long(10.0) is False
    assert not logfile.exists() or logfile.read_text() == ""

    t0 = time.time() - 0.5
    tr = tracing.Trace("transaction", fields=[("read_only", False)], start=t0)
    tr.add_field(number_of_response=1)
    tr.add_field(read_only=True)
    tr.steps.append(tracing._Step(t0 + 0.001, "compare", []))
    tr.steps.append(tracing._Step(t0 + 0.3, "marshal mvccpb.KeyValue", [("key", "foo")]))
    assert tr.log_if_long(0.1) is True
    (line,) = _lines(logfile)
    assert line["level"] == "info"
    m = re.fullmatch(r"trace\[(\d+)\] transaction", line["msg"])
    assert m
    n = m.group(1)
    assert line["detail"] == "{read_only:true; number_of_response:1; }"
    assert re.fullmatch(r"5\d\d\.\d+ms", line["duration"])
    # step threshold is 100ms/(2+1): only the 299ms step is listed
    (step,) = line["steps"]
    assert re.fullmatch(rf"trace\[{n}\] 'marshal mvccpb.KeyValue' {{key:foo; }} \(duration: 299(\.\d+)?ms\)", step)
    assert line["step_count"] == 1
    assert list(line)[4:] == ["detail", "duration", "start", "end", "steps", "step_count"]


def test_sub_trace_fields_apply_to_inner_steps(logfile: Path) -> None:
    t0 = time.time() - 0.2
    tr = tracing.Trace("apply", start=t0)
    tr.start_sub_trace(req_type="put", key="k")
    tr.steps.append(tracing._Step(t0 + 0.15, "check requests", []))
    tr.stop_sub_trace(req_type="put", key="k")
    tr.log()
    (line,) = _lines(logfile)
    assert re.search(r"'check requests' \{req_type:put; key:k; req_type:put; key:k; \} \(duration: 150(\.\d+)?ms\)$",
                     line["steps"][0])


def test_apply_took_too_long_warning(logfile: Path) -> None:
    before = METRICS.slow_apply.get()
    assert tracing.warn_of_expensive_request(time.time(), "key:\"a\"") is False
    assert tracing.warn_of_expensive_request(time.time() - 0.25, 'key:"a" range_end:"b"', "range_response_count:0 size:5",
                                             prefix="read-only range ") is True
    (line,) = _lines(logfile)
    assert line["level"] == "warn" and line["msg"] == "apply request took too long"
    assert list(line)[4:] == ["took", "expected-duration", "prefix", "request", "response"]
    assert line["expected-duration"] == "100ms" and line["prefix"] == "read-only range "
    assert METRICS.slow_apply.get() == before + 1


# --- OpenTelemetry ---------------------------------------------------------------

class _Collector:
    """A real OTLP/gRPC trace collector on loopback."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        self.requests: list[Any] = []
        self.cond = threading.Condition()
        outer = self

        class Svc(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                with outer.cond:
                    outer.requests.append(request)
                    outer.cond.notify_all()
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Svc(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def spans(self) -> list[tuple[Any, Any]]:
        out = []
        with self.cond:
            for req in self.requests:
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        out.extend((rs.resource, sp) for sp in ss.spans)
        return out

    def wait_spans(self, n: int, timeout: float = 15) -> list[tuple[Any, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.spans_unlocked()) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"collector got {len(self.spans_unlocked())} spans, wanted {n}"
                self.cond.wait(left)
        return self.spans()

    def spans_unlocked(self) -> list[Any]:
        return [sp for req in self.requests for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]


def _attrs(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


async def _serve_with_interceptor(provider: Any) -> tuple[grpc.aio.Server, int]:
    async def echo(request: bytes, context: Any) -> bytes:
        if request == b"fail":
            await context.abort(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
        return request

    async def stream(request: bytes, context: Any) -> Any:
        for i in range(3):
            yield bytes([i])

    srv = grpc.aio.server(interceptors=[tracing.make_server_interceptor(provider)])
    srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("etcdserverpb.KV", {
        "Range": grpc.unary_unary_rpc_method_handler(echo),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    })])
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    return srv, port


def test_otel_spans_reach_a_real_otlp_collector() -> None:
    collector = _Collector()
    provider = tracing.setup_otel(tracing.OtelConfig(address=f"127.0.0.1:{collector.port}", service_name="etcd",
                                                     instance_id="member-1"))
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    async def go() -> None:
        srv, port = await _serve_with_interceptor(provider)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                rng = ch.unary_unary("/etcdserverpb.KV/Range")
                md = (("traceparent", f"00-{parent_trace}-00f067aa0ba902b7-01"),)
                assert await rng(b"hello", metadata=md) == b"hello"
                with pytest.raises(grpc.aio.AioRpcError):
                    await rng(b"fail")
                got = [m async for m in ch.unary_stream("/etcdserverpb.KV/Stream")(b"")]
                assert got == [b"\0", b"\1", b"\2"]
        finally:
            await srv.stop(0)

    try:
        asyncio.run(go())
        provider.force_flush()
        spans = collector.wait_spans(3)
    finally:
        provider.shutdown()
        collector.server.stop(0)
    by_name: dict[str, list[Any]] = {}
    for res, sp in spans:
        by_name.setdefault(sp.name, []).append((res, sp))
    assert sorted(by_name) == ["etcdserverpb.KV/Range", "etcdserverpb.KV/Stream"]
    ok, failed = sorted(by_name["etcdserverpb.KV/Range"], key=lambda x: _attrs(x[1].attributes)["rpc.grpc.status_code"])
    res, span = ok
    assert _attrs(res.attributes)["service.name"] == "etcd"
    assert _attrs(res.attributes)["service.instance.id"] == "member-1"
    assert span.trace_id.hex() == parent_trace  # continued from the client's traceparent
    assert span.kind == 2  # SPAN_KIND_SERVER
    a = _attrs(span.attributes)
    assert (a["rpc.system"], a["rpc.service"], a["rpc.method"], a["rpc.grpc.status_code"]) == (
        "grpc", "etcdserverpb.KV", "Range", 0)
    fa = _attrs(failed[1].attributes)
    assert fa["rpc.grpc.status_code"] == 5 and failed[1].status.code == 2  # STATUS_CODE_ERROR


def test_sampling_rate_zero_exports_nothing_and_bad_rates_fail() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    provider = tracing.setup_otel(tracing.OtelConfig(sampling_rate_per_million=0), exporter=mem, batch=False)

    async def go() -> None:
        srv, port = await _serve_with_interceptor(provider)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                assert await ch.unary_unary("/etcdserverpb.KV/Range")(b"x") == b"x"
        finally:
            await srv.stop(0)

    asyncio.run(go())
    assert mem.get_finished_spans() == ()
    with pytest.raises(ValueError, match="must be positive"):
        tracing.setup_otel(tracing.OtelConfig(sampling_rate_per_million=-1), exporter=mem)
    with pytest.raises(ValueError, match="less than 1000000"):
        tracing.setup_otel(tracing.OtelConfig(sampling_rate_per_million=2_000_000), exporter=mem)


def test_gateway_calls_make_the_same_spans() -> None:
    import aiohttp
    from kvetch.api.etcdserverpb import rpc_pb2 as pb
    from kvetch.rpc.api import API, Method
    from kvetch.rpc.front import serve_http
    from kvetch.rpc.gateway import build_gateway_app
    from kvetch.server import errors
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    provider = tracing.setup_otel(tracing.OtelConfig(), exporter=mem, batch=False)

    async def rng(req: pb.RangeRequest) -> pb.RangeResponse:
        if not req.key:
            raise errors.EMPTY_KEY
        return pb.RangeResponse(count=1)

    async def watch(reqs: Any) -> Any:
        async for _ in reqs:
            yield pb.WatchResponse(created=True)

    api = API()
    api.add(Method("/etcdserverpb.KV/Range", pb.RangeRequest, pb.RangeResponse, "unary", rng))
    api.add(Method("/etcdserverpb.Watch/Watch", pb.WatchRequest, pb.WatchResponse, "bidi_stream", watch))

    class Info:
        def versions(self) -> dict[str, str]:
            return {}

        async def health(self, *, serializable: bool, exclude: frozenset[str]) -> tuple[bool, str]:
            return True, ""

    async def go() -> None:
        srv = await serve_http("127.0.0.1", 0, build_gateway_app(api, Info(), spans=tracing.RpcSpans(provider)))
        base = f"http://127.0.0.1:{srv.port}"
        try:
            async with aiohttp.ClientSession() as s:
                hdr = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
                for body in ('{"key":"YQ=="}', "{}"):
                    async with s.post(base + "/v3/kv/range", data=body, headers=hdr) as r:
                        await r.read()
                async with s.post(base + "/v3/watch", data='{"create_request":{"key":"YQ=="}}') as r:
                    assert (await r.read()).count(b"\n") == 1
        finally:
            await srv.close()

    asyncio.run(go())
    spans = sorted(mem.get_finished_spans(), key=lambda sp: sp.start_time)
    assert [sp.name for sp in spans] == ["etcdserverpb.KV/Range", "etcdserverpb.KV/Range", "etcdserverpb.Watch/Watch"]
    ok, bad, w = spans
    assert ok.attributes["rpc.grpc.status_code"] == 0 and bad.attributes["rpc.grpc.status_code"] == 3
    assert format(ok.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ok.attributes["net.peer.ip"] == "127.0.0.1" and ok.attributes["rpc.service"] == "etcdserverpb.KV"
    assert w.attributes["rpc.grpc.status_code"] == 0
