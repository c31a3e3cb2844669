"""Server configuration: etcd's flag names, ``KVETCH_*`` environment variables, YAML config file.

Precedence follows etcd: a ``--config-file`` (YAML, keys are flag names)
replaces flags and environment entirely; otherwise a flag given on the command
line wins over ``KVETCH_<FLAG_NAME>`` (``--data-dir`` -> ``KVETCH_DATA_DIR``),
which wins over the default. Flags that etcd accepts but kvetch does not act on
are parsed (so etcd command lines work unchanged) and listed in ``IGNORED``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from kvetch.version import __version__

DEFAULT_MAX_REQUEST_BYTES = int(1.5 * 1024 * 1024)
DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024
MAX_QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024


def _duration(text: str) -> float:
    """Parse a Go-style duration ("100ms", "5s", "1m30s", "2h") or bare seconds into seconds."""
    text = text.strip()
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] in units else ch
        if unit not in units or not num:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (missing unit)")
    return total


def _bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = text.strip().lower()
    if lowered in ("1", "t", "true", "yes", "on"):
        return True
    if lowered in ("0", "f", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def _urls(text: str | list[str]) -> list[str]:
    if isinstance(text, list):
        return [u.strip() for u in text if u.strip()]
    return [u.strip() for u in text.split(",") if u.strip()]


@dataclass
class Config:
    """Every setting of one member. Field names are etcd's flag names with '-' -> '_'."""

    name: str = "default"
    data_dir: str = ""
    wal_dir: str = ""
    listen_client_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2379"])
    advertise_client_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2379"])
    listen_client_http_urls: list[str] = field(default_factory=list)
    listen_metrics_urls: list[str] = field(default_factory=list)
    listen_peer_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2380"])
    initial_advertise_peer_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2380"])
    initial_cluster: str = ""
    initial_cluster_state: str = "new"
    initial_cluster_token: str = "etcd-cluster"
    snapshot_count: int = 100000
    heartbeat_interval: int = 100  # ms
    election_timeout: int = 1000  # ms
    pre_vote: bool = True
    quota_backend_bytes: int = 0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_txn_ops: int = 128
    auto_compaction_mode: str = "periodic"
    auto_compaction_retention: str = "0"
    unsafe_no_fsync: bool = False
    log_level: str = "info"
    log_outputs: list[str] = field(default_factory=lambda: ["default"])
    enable_log_rotation: bool = False
    log_rotation_config_json: str = (
        '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}'
    )
    experimental_initial_corrupt_check: bool = False
    experimental_corrupt_check_time: float = 0.0
    experimental_enable_lease_checkpoint: bool = True
    experimental_watch_progress_notify_interval: float = 600.0
    experimental_warning_apply_duration: float = 0.1
    experimental_enable_distributed_tracing: bool = False
    experimental_distributed_tracing_address: str = "0.0.0.0:4317"
    experimental_distributed_tracing_service_name: str = "etcd"
    experimental_distributed_tracing_instance_id: str = ""
    experimental_distributed_tracing_sampling_rate: int = 0
    force_new_cluster: bool = False
    config_file: str = ""

    def resolved_data_dir(self) -> str:
        return self.data_dir or f"{self.name}.kvetch"


# Flags: name -> (parser, help). Types are taken from the Config field defaults.
_HELP: dict[str, str] = {
    "name": "Human-readable name for this member.",
    "data-dir": "Path to the data directory (default: <name>.kvetch).",
    "wal-dir": "Path to a dedicated WAL directory.",
    "listen-client-urls": "URLs to listen on for client traffic (gRPC and HTTP on the same port).",
    "advertise-client-urls": "Client URLs of this member to advertise to the rest of the cluster.",
    "listen-client-http-urls": "URLs to serve HTTP (gateway, /health, /metrics) on, apart from gRPC.",
    "listen-metrics-urls": "Extra URLs to serve /metrics and /health on.",
    "listen-peer-urls": "URLs to listen on for peer traffic.",
    "initial-advertise-peer-urls": "Peer URLs of this member to advertise to the rest of the cluster.",
    "initial-cluster": "Initial cluster configuration for bootstrapping (name=peerURL,...).",
    "initial-cluster-state": "Initial cluster state ('new' or 'existing').",
    "initial-cluster-token": "Initial cluster token for the cluster during bootstrap.",
    "snapshot-count": "Number of committed transactions to trigger a snapshot to disk.",
    "heartbeat-interval": "Time (in milliseconds) of a heartbeat interval.",
    "election-timeout": "Time (in milliseconds) for an election to timeout.",
    "pre-vote": "Enable to run an additional Raft election phase.",
    "quota-backend-bytes": "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).",
    "max-request-bytes": "Maximum client request size in bytes the server will accept.",
    "max-txn-ops": "Maximum number of operations permitted in a transaction.",
    "auto-compaction-mode": "Interpret 'auto-compaction-retention' as 'periodic' or 'revision'.",
    "auto-compaction-retention": "Auto compaction retention (0 disables; '1h' or hours for periodic).",
    "unsafe-no-fsync": "Disables fsync, unsafe, will cause data loss.",
    "log-level": "Log level: debug, info, warn, error, panic, or fatal.",
    "log-outputs": "Log outputs: 'default', 'stderr', 'stdout', or file paths.",
    "enable-log-rotation": "Enable log rotation of a single log-outputs file target.",
    "log-rotation-config-json": "Log rotation settings as JSON (maxsize MB, maxage, maxbackups, ...).",
    "experimental-initial-corrupt-check": "Check data corruption before serving clients.",
    "experimental-corrupt-check-time": "Duration between cluster corruption check passes.",
    "experimental-enable-lease-checkpoint": "Persist lease remaining TTL (kvetch: on by default).",
    "experimental-watch-progress-notify-interval": "Interval between watch progress notifications.",
    "experimental-warning-apply-duration": "Apply duration above which a warning is logged.",
    "experimental-enable-distributed-tracing": "Enable OpenTelemetry tracing.",
    "experimental-distributed-tracing-address": "OTLP collector address.",
    "experimental-distributed-tracing-service-name": "Service name for OpenTelemetry spans.",
    "experimental-distributed-tracing-instance-id": "Service instance ID for OpenTelemetry spans.",
    "experimental-distributed-tracing-sampling-rate": "Samples per million spans.",
    "force-new-cluster": "Force to create a new one-member cluster.",
    "config-file": "Path to a YAML configuration file; when given, flags and env vars are ignored.",
}

#: etcd flags accepted for command-line compatibility but without effect in kvetch.
IGNORED = (
    "logger", "enable-v2", "enable-pprof", "metrics", "max-snapshots", "max-wals",
    "strict-reconfig-check", "backend-batch-interval", "backend-batch-limit",
    "backend-bbolt-freelist-type", "auth-token", "bcrypt-cost", "auth-token-ttl",
    "grpc-keepalive-min-time", "grpc-keepalive-interval", "grpc-keepalive-timeout",
    "experimental-compaction-batch-limit", "experimental-txn-mode-write-with-shared-buffer",
    "experimental-downgrade-check-time", "experimental-memory-mlock", "initial-election-tick-advance",
    "socket-reuse-port", "socket-reuse-address", "enable-grpc-gateway", "v2-deprecation",
)

_LIST_FIELDS = {f.name for f in fields(Config) if f.name.endswith("_urls") or f.name == "log_outputs"}
_DURATION_FIELDS = {
    "experimental_corrupt_check_time",
    "experimental_watch_progress_notify_interval",
    "experimental_warning_apply_duration",
}


def _converter(field_name: str, default: Any) -> Any:
    if field_name in _LIST_FIELDS:
        return _urls
    if field_name in _DURATION_FIELDS:
        return _duration
    if isinstance(default, bool):
        return _bool
    if isinstance(default, int):
        return int
    return str


def _defaults() -> dict[str, Any]:
    cfg = Config()
    return {f.name: getattr(cfg, f.name) for f in fields(Config)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvetch",
        description="kvetch: an etcd v3 API compatible key-value server.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="store_true", help="Print the version and exit.")
    for name, value in _defaults().items():
        flag = name.replace("_", "-")
        conv = _converter(name, value)
        if conv is _bool:
            # etcd accepts both `--flag` and `--flag=false`.
            parser.add_argument(f"--{flag}", dest=name, nargs="?", const=True, type=_bool,
                                default=None, help=_HELP.get(flag))
        else:
            parser.add_argument(f"--{flag}", dest=name, type=conv, default=None, help=_HELP.get(flag))
    for flag in IGNORED:
        parser.add_argument(f"--{flag}", dest=f"ignored_{flag.replace('-', '_')}", nargs="?",
                            const="true", default=None, help=argparse.SUPPRESS)
    return parser


def _apply(cfg: Config, values: Mapping[str, Any]) -> None:
    known = {f.name: f for f in fields(Config)}
    for key, raw in values.items():
        name = key.replace("-", "_")
        if name not in known:
            if key.replace("_", "-") in IGNORED:
                continue
            raise SystemExit(f"kvetch: unknown configuration key {key!r}")
        conv = _converter(name, getattr(Config(), name))
        setattr(cfg, name, conv(raw) if isinstance(raw, str) or conv is _urls else raw)


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from command line, environment and config file."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"kvetch Version: {__version__}")
        raise SystemExit(0)
    cfg = Config()
    config_file = args.config_file or environ.get("KVETCH_CONFIG_FILE", "")
    if config_file:
        import yaml  # only for --config-file: no parser in memory otherwise

        with open(config_file, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise SystemExit(f"kvetch: config file {config_file} must hold a mapping")
        _apply(cfg, data)
        cfg.config_file = config_file
    else:
        env_values = {}
        for f in fields(Config):
            env_name = "KVETCH_" + f.name.upper()
            if env_name in environ:
                env_values[f.name] = environ[env_name]
        _apply(cfg, env_values)
        _apply(cfg, {k: v for k, v in vars(args).items()
                     if v is not None and not k.startswith("ignored_") and k != "version"})
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    if cfg.initial_cluster_state not in ("new", "existing"):
        raise SystemExit(f"kvetch: invalid value {cfg.initial_cluster_state!r} for --initial-cluster-state")
    if cfg.auto_compaction_mode not in ("periodic", "revision"):
        raise SystemExit(f"kvetch: invalid auto-compaction-mode {cfg.auto_compaction_mode!r}")
    if cfg.log_level not in ("debug", "info", "warn", "error", "panic", "fatal"):
        raise SystemExit(f"kvetch: invalid log level {cfg.log_level!r}")
    if 5 * cfg.heartbeat_interval > cfg.election_timeout:
        raise SystemExit(
            f"kvetch: --election-timeout[{cfg.election_timeout}ms] should be at least as 5 times as "
            f"--heartbeat-interval[{cfg.heartbeat_interval}ms]"
        )
    if not cfg.initial_cluster:
        cfg.initial_cluster = ",".join(f"{cfg.name}={u}" for u in cfg.initial_advertise_peer_urls)
