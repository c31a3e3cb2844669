"""Request tracing: etcd's expensive-request traces and optional OpenTelemetry.

(a) :class:`Trace` is etcd's ``pkg/traceutil`` trace: an operation, fields and
timestamped steps. :meth:`Trace.log_if_long` logs, when the whole request took
longer than the threshold (``--experimental-warning-apply-duration``, 100ms by
default), one info line ``trace[<n>] <operation>`` with ``detail``
(``{key:v; }``), ``duration``, ``start``, ``end``, ``steps`` (each
``trace[<n>] '<step>' {fields} (duration: 1.2ms)``, only steps longer than
threshold/(steps+1)) and ``step_count``. :func:`warn_of_expensive_request`
logs etcd's ``apply request took too long`` warning (``took``,
``expected-duration``, ``prefix``, ``request``, ``response``, ``error``) and
bumps ``etcd_server_slow_apply_total``.

(b) OpenTelemetry behind ``--experimental-enable-distributed-tracing``:
:func:`setup_otel` builds a tracer provider exporting OTLP/gRPC to
``--experimental-distributed-tracing-address`` (default ``localhost:4317``)
with resource ``service.name`` (default ``etcd``) and, if given,
``service.instance.id``; ``--experimental-distributed-tracing-sampling-rate``
is in samples per million (as in later 3.5 releases; ``None`` = always, as
3.5.1), parent-based. :func:`make_server_interceptor` returns a ``grpc.aio``
server interceptor making one SERVER span per RPC named like otelgrpc
(``etcdserverpb.KV/Range``, attributes ``rpc.system``, ``rpc.service``,
``rpc.method``, ``rpc.grpc.status_code``, ``net.peer.*``), continuing W3C
``traceparent`` from metadata. The opentelemetry packages are optional
(``kvetch[otel]``)::

    provider = setup_otel(OtelConfig(address=cfg.tracing_address, service_name=..., instance_id=...))
    server = build_grpc_server(api, ..., interceptors=[make_server_interceptor(provider)])
    ...
    provider.shutdown()
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kvetch.obs import log as _log
from kvetch.obs.metrics import METRICS

DEFAULT_WARNING_APPLY_DURATION = 0.1  # seconds
DEFAULT_TRACING_ADDRESS = "localhost:4317"
DEFAULT_TRACING_SERVICE_NAME = "etcd"
MAX_SAMPLING_RATE_PER_MILLION = 1_000_000

_tlog = _log.get_logger("kvetch.trace")


def _go_value(v: Any) -> str:
    """Go's ``%v`` for the values traces carry."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _fmt_fields(fields: list[tuple[str, Any]]) -> str:
    if not fields:
        return ""
    return "{" + "".join(f"{k}:{_go_value(v)}; " for k, v in fields) + "}"


@dataclass
class _Step:
    t: float
    msg: str
    fields: list[tuple[str, Any]]
    sub_start: bool = False
    sub_end: bool = False


@dataclass
class Trace:
    """etcd's request trace. Times are ``time.time()`` seconds."""

    operation: str
    fields: list[tuple[str, Any]] = field(default_factory=list)
    start: float = field(default_factory=time.time)
    steps: list[_Step] = field(default_factory=list)
    logger: _log.Logger | None = None
    _step_disabled: bool = False

    def step(self, msg: str, **fields: Any) -> None:
        if not self._step_disabled:
            self.steps.append(_Step(time.time(), msg, list(fields.items())))

    def step_with(self, fn: Callable[[], Any], msg: str, **fields: Any) -> Any:
        """Run ``fn`` with nested steps suppressed, then record one step."""
        self._step_disabled = True
        try:
            return fn()
        finally:
            self._step_disabled = False
            self.step(msg, **fields)

    def start_sub_trace(self, **fields: Any) -> None:
        self.steps.append(_Step(0.0, "", list(fields.items()), sub_start=True))

    def stop_sub_trace(self, **fields: Any) -> None:
        self.steps.append(_Step(0.0, "", list(fields.items()), sub_end=True))

    def add_field(self, **fields: Any) -> None:
        for k, v in fields.items():
            for i, (kk, _) in enumerate(self.fields):
                if kk == k:
                    self.fields[i] = (k, v)
                    break
            else:
                self.fields.append((k, v))

    def log_if_long(self, threshold: float = DEFAULT_WARNING_APPLY_DURATION) -> bool:
        """Log the trace if it took longer than ``threshold`` seconds; True if logged."""
        if time.time() - self.start > threshold:
            self.log_with_step_threshold(threshold / (len(self.steps) + 1))
            return True
        return False

    def log_all_steps_if_long(self, threshold: float = DEFAULT_WARNING_APPLY_DURATION) -> bool:
        if time.time() - self.start > threshold:
            self.log_with_step_threshold(0.0)
            return True
        return False

    def log(self) -> None:
        self.log_with_step_threshold(0.0)

    def render(self, step_threshold: float) -> tuple[str, dict[str, Any]]:
        end = time.time()
        num = random.randint(0, 2**31 - 1)
        steps = [_Step(s.t, s.msg, list(s.fields), s.sub_start, s.sub_end) for s in self.steps]
        for i, s in enumerate(steps):  # sub-trace fields apply to the steps inside
            if s.sub_start:
                j = i + 1
                while j < len(steps) and not steps[j].sub_end:
                    steps[j].fields = s.fields + steps[j].fields
                    j += 1
            elif s.sub_end:
                j = i - 1
                while j >= 0 and not steps[j].sub_start:
                    steps[j].fields = s.fields + steps[j].fields
                    j -= 1
        lines: list[str] = []
        last = self.start
        for s in steps:
            if s.sub_start or s.sub_end:
                continue
            d = s.t - last
            if d > step_threshold:
                lines.append(f"trace[{num}] '{s.msg}' {_fmt_fields(s.fields)} (duration: {_log.go_duration(d)})")
            last = s.t
        fields = {
            "detail": _fmt_fields(self.fields),
            "duration": timedelta(seconds=end - self.start),
            "start": _log.format_ts(self.start),
            "end": _log.format_ts(end),
            "steps": lines,
            "step_count": len(lines),
        }
        return f"trace[{num}] {self.operation}", fields

    def log_with_step_threshold(self, threshold: float) -> None:
        msg, fields = self.render(threshold)
        lg = self.logger or _tlog
        if _log.enabled(_log.INFO):
            lg._log(_log.INFO, msg, fields, depth=3)


def warn_of_expensive_request(
    start: float,
    request: str,
    response: str = "",
    error: BaseException | str | None = None,
    *,
    prefix: str = "",
    threshold: float = DEFAULT_WARNING_APPLY_DURATION,
    logger: _log.Logger | None = None,
) -> bool:
    """etcd's ``apply request took too long`` warning if ``time.time()-start > threshold``.

    ``prefix`` is ``"read-only range "`` / ``"read-only txn "`` / ``""``; ``response``
    like ``"range_response_count:1 size:75"`` or ``"size:26"``.
    """
    took = time.time() - start
    if took <= threshold:
        return False
    fields: dict[str, Any] = {
        "took": timedelta(seconds=took),
        "expected-duration": timedelta(seconds=threshold),
        "prefix": prefix,
        "request": request,
        "response": response,
    }
    if error is not None:
        fields["error"] = str(error)
    lg = logger or _tlog
    if _log.enabled(_log.WARN):
        lg._log(_log.WARN, "apply request took too long", fields, depth=2)
    METRICS.slow_apply.inc()
    return True


# --- OpenTelemetry -----------------------------------------------------------------

@dataclass
class OtelConfig:
    address: str = DEFAULT_TRACING_ADDRESS
    service_name: str = DEFAULT_TRACING_SERVICE_NAME
    instance_id: str = ""
    sampling_rate_per_million: int | None = None


def validate_sampling_rate(rate: int) -> None:
    if rate < 0:
        raise ValueError("tracing sampling rate must be positive")
    if rate > MAX_SAMPLING_RATE_PER_MILLION:
        raise ValueError(f"tracing sampling rate must be less than {MAX_SAMPLING_RATE_PER_MILLION}")


def otel_available() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def setup_otel(cfg: OtelConfig, *, exporter: Any = None, batch: bool = True) -> Any:
    """Build a TracerProvider as etcd does. ``exporter`` defaults to OTLP/gRPC to ``cfg.address``.

    Returns the provider (call ``.shutdown()`` on exit, ``.force_flush()`` in tests).
    Raises ImportError when the opentelemetry packages are missing.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

    if cfg.sampling_rate_per_million is not None:
        validate_sampling_rate(cfg.sampling_rate_per_million)
    attrs = {"service.name": cfg.service_name}
    if cfg.instance_id:
        attrs["service.instance.id"] = cfg.instance_id
    rate = cfg.sampling_rate_per_million
    root: Any
    if rate is None:
        root = ALWAYS_ON
    elif rate == 0:
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(rate / MAX_SAMPLING_RATE_PER_MILLION)
    provider = TracerProvider(resource=Resource.create(attrs), sampler=ParentBased(root))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=cfg.address, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    _tlog.info(
        "distributed tracing enabled",
        **{
            "distributed-tracing-address": cfg.address,
            "distributed-tracing-service-name": cfg.service_name,
            "distributed-tracing-service-instance-id": cfg.instance_id,
        },
    )
    return provider


def _status_code_of(exc: BaseException | None, context: Any) -> tuple[str, int]:
    import grpc

    from kvetch.server.errors import RPCError

    if exc is None:
        code = getattr(context, "code", lambda: None)()
        if code is None:
            return "OK", 0
        return code.name, code.value[0]
    if isinstance(exc, RPCError):
        return exc.code.name, exc.code.value[0]
    if isinstance(exc, grpc.aio.AbortError):
        code = context.code()
        if code is not None:
            return code.name, code.value[0]
    return "UNKNOWN", 2


class RpcSpans:
    """Server spans named and attributed as otelgrpc does; shared by the gRPC interceptor and the gateway."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.propagate import extract
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._ctx, self._trace, self._extract = otel_context, trace, extract
        self._kind, self._status, self._codes = SpanKind.SERVER, Status, StatusCode
        self.tracer = provider.get_tracer("go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc")

    def start(self, full_method: str, carrier: dict[str, str], peer_ip: str = "",
              peer_port: int | None = None) -> tuple[Any, Any]:
        """Start the span for ``/pkg.Service/Method``; ``carrier`` holds ``traceparent`` etc."""
        name = full_method.lstrip("/")
        service, _, method = name.partition("/")
        attrs: dict[str, Any] = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        if peer_ip:
            attrs["net.peer.ip"] = peer_ip
        if peer_port is not None:
            attrs["net.peer.port"] = peer_port
        span = self.tracer.start_span(name, context=self._extract(carrier), kind=self._kind, attributes=attrs)
        token = self._ctx.attach(self._trace.set_span_in_context(span))
        return span, token

    def finish(self, span: Any, token: Any, code_name: str, code_num: int) -> None:
        span.set_attribute("rpc.grpc.status_code", code_num)
        if code_num != 0:
            span.set_status(self._status(self._codes.ERROR, code_name))
        with contextlib.suppress(Exception):  # a stream may finish in another context
            self._ctx.detach(token)
        span.end()


def _grpc_peer(peer: str) -> tuple[str, int | None]:
    """``ipv4:127.0.0.1:5555`` / ``ipv6:[::1]:5555`` -> (ip, port)."""
    if not peer or peer.startswith("unix:"):
        return "", None
    host, _, port = peer.split(":", 1)[-1].rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else None


def make_server_interceptor(provider: Any) -> Any:
    """A ``grpc.aio.ServerInterceptor`` making one span per RPC (otelgrpc's naming and attributes)."""
    import grpc

    spans = RpcSpans(provider)

    class OtelServerInterceptor(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            if handler is None:
                return None
            full = details.method  # "/etcdserverpb.KV/Range"
            carrier = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}

            def start(context: Any) -> tuple[Any, Any]:
                ip, port = _grpc_peer(context.peer() if context is not None else "")
                return spans.start(full, carrier, ip, port)

            def finish(span: Any, token: Any, exc: BaseException | None, context: Any) -> None:
                code_name, code_num = _status_code_of(exc, context)
                spans.finish(span, token, code_name, code_num)

            if handler.unary_unary is not None:
                inner_uu = handler.unary_unary

                async def uu(request: Any, context: Any) -> Any:
                    span, token = start(context)
                    exc: BaseException | None = None
                    try:
                        return await inner_uu(request, context)
                    except BaseException as e:
                        exc = e
                        raise
                    finally:
                        finish(span, token, exc, context)

                return grpc.unary_unary_rpc_method_handler(
                    uu, handler.request_deserializer, handler.response_serializer
                )

            def wrap_stream(inner: Callable[..., Any]) -> Callable[..., Any]:
                async def gen(request_or_iter: Any, context: Any) -> Any:
                    span, token = start(context)
                    exc: BaseException | None = None
                    try:
                        result = inner(request_or_iter, context)
                        if hasattr(result, "__aiter__"):
                            async for item in result:
                                yield item
                        else:
                            r = await result
                            if r is not None:
                                yield r
                    except BaseException as e:
                        exc = e
                        raise
                    finally:
                        finish(span, token, exc, context)

                return gen

            if handler.unary_stream is not None:
                return grpc.unary_stream_rpc_method_handler(
                    wrap_stream(handler.unary_stream), handler.request_deserializer, handler.response_serializer
                )
            if handler.stream_stream is not None:
                return grpc.stream_stream_rpc_method_handler(
                    wrap_stream(handler.stream_stream), handler.request_deserializer, handler.response_serializer
                )
            if handler.stream_unary is not None:
                inner_su = handler.stream_unary

                async def su(request_iter: Any, context: Any) -> Any:
                    span, token = start(context)
                    exc: BaseException | None = None
                    try:
                        return await inner_su(request_iter, context)
                    except BaseException as e:
                        exc = e
                        raise
                    finally:
                        finish(span, token, exc, context)

                return grpc.stream_unary_rpc_method_handler(
                    su, handler.request_deserializer, handler.response_serializer
                )
            return handler

    return OtelServerInterceptor()
