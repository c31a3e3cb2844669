"""Prometheus metrics with etcd 3.5's names, labels, help texts and buckets.

One registry per process (:data:`METRICS`, a :class:`Metrics`); the server
updates the objects, ``/metrics`` renders ``METRICS.registry``. Names come
from etcd's sources (server/etcdserver/metrics.go, server/mvcc/metrics.go,
server/wal/metrics.go, server/mvcc/backend/metrics.go,
server/etcdserver/api/rafthttp/metrics.go, v3rpc/metrics.go,
go-grpc-prometheus), so existing dashboards and alerts work.

Counters are exposed under their exact etcd name: the Python client would add
``_total`` to ``etcd_server_health_success`` and emit ``*_created`` samples,
so counters here are :class:`ExactCounter` (same ``inc``/``labels`` API).

Typical use::

    from kvetch.obs.metrics import METRICS as M
    M.has_leader.set(1); M.mvcc_put.inc(); M.wal_fsync.observe(0.002)
    M.set_server_version("3.5.1"); M.set_cluster_version("3.5"); M.set_server_id(0x2E12...)
    M.db_total_size.set_function(lambda: backend.size())
    M.grpc_started.labels("unary", "etcdserverpb.KV", "Range").inc()
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """Go client's ``prometheus.ExponentialBuckets``."""
    return [start * factor**i for i in range(count)]


class _CounterChild:
    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only increase")
        with self._lock:
            self.value += amount

    def get(self) -> float:
        return self.value


class ExactCounter(Collector):
    """A counter rendered under exactly ``name`` (no ``_total`` added, no ``_created``)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _CounterChild] = {}
        self._lock = threading.Lock()
        if not self.labelnames:
            self._children[()] = _CounterChild()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str, **kw: str) -> _CounterChild:
        if kw:
            values = tuple(kw[n] for n in self.labelnames)
        key = tuple(str(v) for v in values)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}")
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, _CounterChild())
        return child

    def inc(self, amount: float = 1.0) -> None:
        self._children[()].inc(amount)

    def get(self, *values: str) -> float:
        child = self._children.get(tuple(values))
        return child.value if child else 0.0

    def describe(self) -> Iterable[Metric]:
        return [Metric(self.name, self.documentation, "counter")]

    def collect(self) -> Iterable[Metric]:
        m = Metric(self.name, self.documentation, "counter")
        for key, child in list(self._children.items()):
            m.add_sample(self.name, dict(zip(self.labelnames, key, strict=True)), child.value)
        return [m]


class _FdCollector(Collector):
    """etcd's ``os_fd_used`` / ``os_fd_limit`` gauges."""

    def collect(self) -> Iterator[Metric]:
        try:
            used = len(os.listdir("/proc/self/fd"))
        except OSError:
            return
        import resource

        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        m = Metric("os_fd_used", "The number of used file descriptors.", "gauge")
        m.add_sample("os_fd_used", {}, used)
        yield m
        m = Metric("os_fd_limit", "The file descriptor limit.", "gauge")
        m.add_sample("os_fd_limit", {}, limit)
        yield m


GRPC_CODES = (
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
)  # go-grpc-prometheus label values (Go's codes.Code.String())


def grpc_code_label(code_name: str) -> str:
    """``grpc.StatusCode.NOT_FOUND.name`` -> ``NotFound`` (``CANCELLED`` -> ``Canceled``)."""
    if code_name == "CANCELLED":
        return "Canceled"
    return "".join(p.capitalize() for p in code_name.split("_"))


class Metrics:
    """All of kvetch's metrics in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process:
            from prometheus_client import ProcessCollector

            ProcessCollector(registry=r)
            r.register(_FdCollector())

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> ExactCounter:
            return ExactCounter(name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        def hist(name: str, doc: str, buckets: list[float], labels: Sequence[str] = ()) -> Histogram:
            return Histogram(name, doc, labels, registry=r, buckets=buckets)

        # --- server (server/etcdserver/metrics.go) --------------------------
        self.has_leader = gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.")
        self.is_leader = gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.")
        self.is_learner = gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.")
        self.leader_changes = counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.")
        self.learner_promote_failures = counter(
            "etcd_server_learner_promote_failures",
            "The total number of failed learner promotions (likely learner not ready) while this member is leader.",
            ["Reason"],
        )
        self.learner_promote_successes = counter(
            "etcd_server_learner_promote_successes",
            "The total number of successful learner promotions while this member is leader.",
        )
        self.heartbeat_send_failures = counter(
            "etcd_server_heartbeat_send_failures_total",
            "The total number of leader heartbeat send failures (likely overloaded from slow disk).",
        )
        self.slow_apply = counter(
            "etcd_server_slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk)."
        )
        self.snapshot_apply_in_progress = gauge(
            "etcd_server_snapshot_apply_in_progress_total", "1 if the server is applying the incoming snapshot. 0 if none."
        )
        # etcd exports these two as gauges despite the _total suffix
        self.proposals_committed = gauge(
            "etcd_server_proposals_committed_total", "The total number of consensus proposals committed."
        )
        self.proposals_applied = gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.")
        self.proposals_pending = gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.")
        self.proposals_failed = counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.")
        self.slow_read_indexes = counter(
            "etcd_server_slow_read_indexes_total",
            "The total number of pending read indexes not in sync with leader's or timed out read index requests.",
        )
        self.read_indexes_failed = counter("etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen.")
        self.lease_expired = counter("etcd_debugging_server_lease_expired_total", "The total number of expired leases.")
        self.quota_backend_bytes = gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.")
        self.server_version = gauge(
            "etcd_server_version",
            "Which version is running. 1 for 'server_version' label with current version.",
            ["server_version"],
        )
        self.cluster_version = gauge(
            "etcd_cluster_version",
            "Which version is running. 1 for 'cluster_version' label with current cluster version",
            ["cluster_version"],
        )
        self.server_id = gauge(
            "etcd_server_id",
            "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
            ["server_id"],
        )
        self.apply_duration = hist(
            "etcd_server_apply_duration_seconds",
            "The latency distributions of v2 apply called by backend.",
            exponential_buckets(0.0001, 2, 20),
            ["version", "op", "success"],
        )
        self.client_requests = counter(
            "etcd_server_client_requests_total",
            "The total number of client requests per client version.",
            ["type", "client_api_version"],
        )
        self.health_success = counter("etcd_server_health_success", "The total number of successful health checks")
        self.health_failures = counter("etcd_server_health_failures", "The total number of failed health checks")
        self.health_check = counter(
            "etcd_server_healthcheck_total", "The total number of each health checks", ["type", "name", "status"]
        )

        # --- mvcc (server/mvcc/metrics.go) ------------------------------------
        self.mvcc_range = counter("etcd_mvcc_range_total", "Total number of ranges seen by this member.")
        self.mvcc_put = counter("etcd_mvcc_put_total", "Total number of puts seen by this member.")
        self.mvcc_delete = counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.")
        self.mvcc_txn = counter("etcd_mvcc_txn_total", "Total number of txns seen by this member.")
        self.keys_total = gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.")
        self.watch_stream_total = gauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.")
        self.watcher_total = gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.")
        self.slow_watcher_total = gauge("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.")
        self.events_total = counter("etcd_debugging_mvcc_events_total", "Total number of events sent by this member.")
        self.pending_events_total = gauge("etcd_debugging_mvcc_pending_events_total", "Total number of pending events to be sent.")
        self.index_compaction_pause = hist(
            "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
            "Bucketed histogram of index compaction pause duration.",
            exponential_buckets(0.5, 2, 14),
        )
        self.db_compaction_pause = hist(
            "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
            "Bucketed histogram of db compaction pause duration.",
            exponential_buckets(1, 2, 13),
        )
        self.db_compaction_total = hist(
            "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
            "Bucketed histogram of db compaction total duration.",
            exponential_buckets(100, 2, 14),
        )
        self.db_compaction_last = gauge(
            "etcd_debugging_mvcc_db_compaction_last", "The unix time of the last db compaction. Resets to 0 on start."
        )
        self.db_compaction_keys = counter("etcd_debugging_mvcc_db_compaction_keys_total", "Total number of db keys compacted.")
        self.db_total_size = gauge(
            "etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes."
        )
        self.db_total_size_in_use = gauge(
            "etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes."
        )
        self.db_open_read_txns = gauge("etcd_mvcc_db_open_read_transactions", "The number of currently open read transactions")
        self.hash_duration = hist(
            "etcd_mvcc_hash_duration_seconds", "The latency distribution of storage hash operation.",
            exponential_buckets(0.01, 2, 15),
        )
        self.hash_rev_duration = hist(
            "etcd_mvcc_hash_rev_duration_seconds", "The latency distribution of storage hash by revision operation.",
            exponential_buckets(0.01, 2, 15),
        )
        self.current_revision = gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.")
        self.compact_revision = gauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.")
        self.total_put_size = gauge(
            "etcd_debugging_mvcc_total_put_size_in_bytes", "The total size of put kv pairs seen by this member."
        )

        # --- disk: WAL and backend -------------------------------------------
        self.wal_fsync = hist(
            "etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
            exponential_buckets(0.001, 2, 14),
        )
        self.wal_write_bytes = gauge("etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.")
        self.backend_commit = hist(
            "etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend.",
            exponential_buckets(0.001, 2, 14),
        )
        self.backend_defrag = hist(
            "etcd_disk_backend_defrag_duration_seconds", "The latency distribution of backend defragmentation.",
            exponential_buckets(0.1, 2, 13),
        )
        self.backend_snapshot = hist(
            "etcd_disk_backend_snapshot_duration_seconds", "The latency distribution of backend snapshots.",
            exponential_buckets(0.01, 2, 17),
        )
        self.defrag_inflight = gauge("etcd_disk_defrag_inflight", "Whether or not defrag is active on the member. 1 means active, 0 means not.")

        # --- client network and gRPC ------------------------------------------
        self.grpc_received_bytes = counter(
            "etcd_network_client_grpc_received_bytes_total", "The total number of bytes received from grpc clients."
        )
        self.grpc_sent_bytes = counter(
            "etcd_network_client_grpc_sent_bytes_total", "The total number of bytes sent to grpc clients."
        )
        self.server_stream_failures = counter(
            "etcd_network_server_stream_failures_total",
            "The total number of stream failures from the local server.",
            ["Type", "API"],
        )
        glabels = ["grpc_method", "grpc_service", "grpc_type"]
        self.grpc_started = counter(
            "grpc_server_started_total", "Total number of RPCs started on the server.", glabels
        )
        self.grpc_handled = counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            ["grpc_code", *glabels],
        )
        self.grpc_msg_received = counter(
            "grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", glabels
        )
        self.grpc_msg_sent = counter(
            "grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", glabels
        )

        # --- peer network (rafthttp/metrics.go) ---------------------------------
        self.peer_active = gauge("etcd_network_active_peers", "The current number of active peer connections.", ["Local", "Remote"])
        self.peer_disconnected = counter(
            "etcd_network_disconnected_peers_total", "The total number of disconnected peers.", ["Local", "Remote"]
        )
        self.peer_sent_bytes = counter("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", ["To"])
        self.peer_received_bytes = counter(
            "etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", ["From"]
        )
        self.peer_sent_failures = counter(
            "etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", ["To"]
        )
        self.peer_received_failures = counter(
            "etcd_network_peer_received_failures_total", "The total number of receive failures from peers.", ["From"]
        )
        self.peer_rtt = hist(
            "etcd_network_peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers",
            exponential_buckets(0.0001, 2, 16), ["To"],
        )
        self.snapshot_send_success = counter("etcd_network_snapshot_send_success", "Total number of successful snapshot sends", ["To"])
        self.snapshot_send_failures = counter("etcd_network_snapshot_send_failures", "Total number of snapshot send failures", ["To"])
        self.snapshot_send_inflights = gauge(
            "etcd_network_snapshot_send_inflights_total", "Total number of inflight snapshot sends", ["To"]
        )
        self.snapshot_send_seconds = hist(
            "etcd_network_snapshot_send_total_duration_seconds", "Total latency distributions of v3 snapshot sends",
            exponential_buckets(0.1, 2, 10), ["To"],
        )
        self.snapshot_receive_success = counter(
            "etcd_network_snapshot_receive_success", "Total number of successful snapshot receives", ["From"]
        )
        self.snapshot_receive_failures = counter(
            "etcd_network_snapshot_receive_failures", "Total number of snapshot receive failures", ["From"]
        )
        self.snapshot_receive_inflights = gauge(
            "etcd_network_snapshot_receive_inflights_total", "Total number of inflight snapshot receives", ["From"]
        )
        self.snapshot_receive_seconds = hist(
            "etcd_network_snapshot_receive_total_duration_seconds", "Total latency distributions of v3 snapshot receives",
            exponential_buckets(0.1, 2, 10), ["From"],
        )

        # --- leases (lease/metrics.go) ------------------------------------------
        self.lease_granted = counter("etcd_debugging_lease_granted_total", "The total number of granted leases.")
        self.lease_revoked = counter("etcd_debugging_lease_revoked_total", "The total number of revoked leases.")
        self.lease_renewed = counter("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by the leader.")

    # --- helpers for the one-hot "info" gauges ---------------------------------
    def _one_hot(self, g: Gauge, value: str) -> None:
        g.clear()
        g.labels(value).set(1)

    def set_server_version(self, version: str) -> None:
        self._one_hot(self.server_version, version)

    def set_cluster_version(self, version: str) -> None:
        """``version`` as etcd shows it: ``MAJOR.MINOR`` (``"3.5"``)."""
        self._one_hot(self.cluster_version, version)

    def set_server_id(self, member_id: int) -> None:
        self._one_hot(self.server_id, f"{member_id:x}")

    def init_grpc_methods(self, methods: Iterable[tuple[str, str, str]]) -> None:
        """Pre-create the series for every (grpc_type, service, method) as go-grpc-prometheus does.

        ``grpc_type`` is ``unary``, ``client_stream``, ``server_stream`` or ``bidi_stream``;
        ``service`` is the full name (``etcdserverpb.KV``).
        """
        for typ, service, method in methods:
            self.grpc_started.labels(method, service, typ)
            self.grpc_msg_received.labels(method, service, typ)
            self.grpc_msg_sent.labels(method, service, typ)
            for code in GRPC_CODES:
                self.grpc_handled.labels(code, method, service, typ)

    def record_grpc(self, typ: str, service: str, method: str, code_name: str) -> None:
        """One finished RPC: ``code_name`` is ``grpc.StatusCode.X.name`` (``OK``, ``NOT_FOUND``...)."""
        self.grpc_handled.labels(grpc_code_label(code_name), method, service, typ).inc()


def _go_float(v: float) -> str:
    s = floatToGoString(v)
    return s[:-2] if s.endswith(".0") else s


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(registry: CollectorRegistry) -> bytes:
    """Prometheus text format 0.0.4 as Go's client writes it.

    Differences from ``prometheus_client.generate_latest``: counter families keep
    their exact name (``etcd_server_health_success`` stays without ``_total``), no
    ``*_created`` samples, integral values print as ``0`` not ``0.0``.
    """
    out: list[str] = []
    for mf in registry.collect():
        samples = [s for s in mf.samples if not s.name.endswith("_created")]
        if mf.type == "histogram":  # Go writes _sum before _count
            samples.sort(key=lambda s: s.name.endswith("_count"))
        name = mf.name
        if mf.type == "counter" and samples and all(s.name == name + "_total" for s in samples):
            name = name + "_total"
        typ = mf.type if mf.type in ("counter", "gauge", "histogram", "summary") else "untyped"
        doc = mf.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {typ}\n")
        for smp in samples:
            if smp.labels:
                labels = ",".join(
                    f'{k}="{_go_float(float(v)) if k == "le" else _escape(str(v))}"' for k, v in smp.labels.items()
                )
                out.append(f"{smp.name}{{{labels}}} {_go_float(smp.value)}\n")
            else:
                out.append(f"{smp.name} {_go_float(smp.value)}\n")
    return "".join(out).encode()


def gauge_from(g: Gauge, fn: Callable[[], float]) -> None:
    """Make ``g`` read its value from ``fn`` at scrape time (etcd's GaugeFunc)."""
    g.set_function(fn)


METRICS = Metrics()
