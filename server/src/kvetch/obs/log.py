"""Structured JSON logs in the shape etcd 3.5's zap logger prints them.

One object per line, keys in zap's order, e.g. (real etcd 3.5.1)::

    {"level":"info","ts":"2026-12-01T03:17:04.125Z","caller":"etcdmain/etcd.go:72","msg":"...","args":[...]}

``ts`` is zap's ISO8601 encoder (local time, milliseconds, ``Z`` or ``+0100``),
``caller`` is ``<dir>/<file>:<line>`` of the call site, durations print as Go
duration strings (``848.634µs``), exceptions as their message.

Use::

    from kvetch.obs.log import get_logger
    log = get_logger(__name__)
    log.info("ready to serve client requests")
    log.warn("apply request took too long", took=timedelta(...), **{"expected-duration": "100ms"})
    child = log.with_fields(**{"local-member-id": "8e9e05c52164694d"})

Configuration mirrors etcd's flags (:func:`setup_logging`): ``--log-level``
(debug|info|warn|error|panic|fatal), ``--log-outputs`` (``default``, ``stderr``,
``stdout``, ``/dev/null`` or file paths), ``--enable-log-rotation`` with
``--log-rotation-config-json`` (lumberjack's ``maxsize`` in MB, ``maxage`` in
days, ``maxbackups``, ``localtime``, ``compress``; backups are named
``<name>-2006-01-02T15-04-05.000<ext>``). ``panic`` logs then raises,
``fatal`` logs then exits with status 1. From ``error`` up a ``stacktrace``
field follows the others, as zap's production config adds one. A disabled level costs one integer
comparison. :func:`install_stdlib_bridge` routes the ``logging`` module's records
(aiohttp, grpc, other kvetch modules) through the same sinks.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import json
import logging
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from typing import IO, Any, NoReturn

DEBUG, INFO, WARN, ERROR, DPANIC, PANIC, FATAL = 0, 1, 2, 3, 4, 5, 6
LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARN: "warn", ERROR: "error", DPANIC: "dpanic", PANIC: "panic", FATAL: "fatal"}
LEVELS = {v: k for k, v in LEVEL_NAMES.items()}

DEFAULT_ROTATION_CONFIG_JSON = '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}'
ERR_ROTATION_OUTPUT = "--log-outputs requires a single file path when --log-rotate-config-json is defined"


class LogPanic(RuntimeError):
    """Raised after a ``panic`` level line (zap panics)."""


# --- encoding ---------------------------------------------------------------

def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for a number of seconds."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < 1000:
        out = f"{ns}ns"
    elif ns < 1_000_000:
        out = _trim(f"{ns / 1e3:.3f}") + "µs"
    elif ns < 1_000_000_000:
        out = _trim(f"{ns / 1e6:.6f}") + "ms"
    else:
        h, rem = divmod(ns, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        s = _trim(f"{rem / 1e9:.9f}") + "s"
        out = (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + s
    return ("-" if neg else "") + out


def _trim(num: str) -> str:
    return num.rstrip("0").rstrip(".") if "." in num else num


def _encode(v: Any) -> Any:
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    if isinstance(v, _dt.timedelta):
        return go_duration(v.total_seconds())
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, BaseException):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _encode(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_encode(x) for x in v]
    return str(v)


def format_ts(t: float, *, utc: bool = False) -> str:
    """zap's ISO8601TimeEncoder: ``2006-01-02T15:04:05.000Z0700``."""
    dt = _dt.datetime.fromtimestamp(t, _dt.UTC) if utc else _dt.datetime.fromtimestamp(t).astimezone()
    base = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond // 1000:03d}"
    off = dt.utcoffset() or _dt.timedelta(0)
    if not off:
        return base + "Z"
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return f"{base}{sign}{mins // 60:02d}{mins % 60:02d}"


def short_caller(path: str, line: int) -> str:
    """zap's ShortCallerEncoder: last directory and file name."""
    d, f = os.path.split(path)
    return f"{os.path.basename(d)}/{f}:{line}" if d else f"{f}:{line}"


def encode_line(level: int, msg: str, caller: str | None, fields: Iterable[tuple[str, Any]],
                name: str | None = None, t: float | None = None) -> str:
    obj: dict[str, Any] = {"level": LEVEL_NAMES.get(level, "info"), "ts": format_ts(time.time() if t is None else t)}
    if name:
        obj["logger"] = name
    if caller:
        obj["caller"] = caller
    obj["msg"] = msg
    for k, v in fields:
        obj[k] = _encode(v)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


# --- sinks --------------------------------------------------------------------

class StreamSink:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, line: str) -> None:
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        pass


class FileSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self.f = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, line: str) -> None:
        self.f.write(line)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


class RotatingFileSink:
    """Size-based rotation with lumberjack's semantics and backup names."""

    def __init__(self, path: str, *, maxsize_mb: int = 100, maxage_days: int = 0, maxbackups: int = 0,
                 localtime: bool = False, compress: bool = False, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes if max_bytes is not None else (maxsize_mb or 100) * 1024 * 1024
        self.maxage_days = maxage_days
        self.maxbackups = maxbackups
        self.localtime = localtime
        self.compress = compress
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.f = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self.size = self.f.tell()
        self._last_backup = 0.0

    def write(self, line: str) -> None:
        data = line.encode("utf-8")
        if self.size + len(data) > self.max_bytes and self.size > 0:
            self.rotate()
        self.f.write(line)
        self.f.flush()
        self.size += len(data)

    def backup_name(self, t: float) -> str:
        d, base = os.path.split(self.path)
        stem, ext = os.path.splitext(base)
        dt = _dt.datetime.fromtimestamp(t) if self.localtime else _dt.datetime.fromtimestamp(t, _dt.UTC)
        stamp = dt.strftime("%Y-%m-%dT%H-%M-%S") + f".{dt.microsecond // 1000:03d}"
        return os.path.join(d, f"{stem}-{stamp}{ext}")

    def rotate(self) -> None:
        self.f.close()
        t = max(time.time(), self._last_backup + 0.001)
        name = self.backup_name(t)
        while os.path.exists(name) or os.path.exists(name + ".gz"):  # keep names unique and in time order
            t += 0.001
            name = self.backup_name(t)
        self._last_backup = t
        os.replace(self.path, name)
        self.f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self.size = 0
        if self.compress:
            with open(name, "rb") as src, gzip.open(name + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.remove(name)
        self._cleanup()

    def backups(self) -> list[str]:
        d, base = os.path.split(self.path)
        stem, ext = os.path.splitext(base)
        d = d or "."
        out = []
        for n in os.listdir(d):
            if n.startswith(stem + "-") and (n.endswith(ext) or n.endswith(ext + ".gz")) and n != base:
                out.append(os.path.join(d, n))
        return sorted(out, key=lambda p: os.path.basename(p), reverse=True)  # newest first

    def _cleanup(self) -> None:
        files = self.backups()
        drop: list[str] = []
        if self.maxbackups > 0 and len(files) > self.maxbackups:
            drop.extend(files[self.maxbackups:])
            files = files[: self.maxbackups]
        if self.maxage_days > 0:
            cutoff = time.time() - self.maxage_days * 86400
            drop.extend(p for p in files if os.path.getmtime(p) < cutoff)
        for p in drop:
            with contextlib.suppress(OSError):
                os.remove(p)

    def close(self) -> None:
        self.f.close()


# --- configuration ----------------------------------------------------------------

class _Config:
    def __init__(self) -> None:
        self.level = INFO
        self.sinks: list[Any] = [StreamSink(sys.stderr)]
        self.lock = threading.Lock()
        # zap's sampler as etcd configures it: per (level, msg) and second, the first
        # 100 entries, then every 100th
        self.sampling: tuple[int, int] | None = (100, 100)
        self._tick = 0
        self._counts: dict[tuple[int, str], int] = {}

    def sample(self, level: int, msg: str) -> bool:
        if self.sampling is None:
            return True
        tick = int(time.monotonic())
        if tick != self._tick:
            self._tick = tick
            self._counts = {}
        n = self._counts.get((level, msg), 0) + 1
        self._counts[(level, msg)] = n
        first, thereafter = self.sampling
        return n <= first or (n - first) % thereafter == 0

    def emit(self, line: str) -> None:
        with self.lock:
            for s in self.sinks:
                with contextlib.suppress(OSError, ValueError):
                    s.write(line)


_CONFIG = _Config()


def parse_level(name: str) -> int:
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r} (want debug|info|warn|error|panic|fatal)") from None


def setup_logging(level: str = "info", outputs: Iterable[str] = ("default",), *, enable_rotation: bool = False,
                  rotation_config_json: str = DEFAULT_ROTATION_CONFIG_JSON, rotation_max_bytes: int | None = None,
                  sampling: tuple[int, int] | None = (100, 100)) -> None:
    """Apply ``--log-level``, ``--log-outputs``, ``--enable-log-rotation``, ``--log-rotation-config-json``.

    Errors (ValueError) as etcd: ``default`` combined with other outputs, rotation
    without exactly one file output, bad rotation JSON.
    ``rotation_max_bytes`` overrides ``maxsize`` (tests). ``sampling`` is zap's
    (initial, thereafter) per message and second as etcd sets it; ``None`` logs everything.
    """
    lvl = parse_level(level)
    outs = list(dict.fromkeys(outputs)) or ["default"]
    if len(outs) > 1 and "default" in outs:
        raise ValueError('multi logoutput for "default" is not supported yet')
    files = [o for o in outs if o not in ("default", "stderr", "stdout", "/dev/null")]
    rot: dict[str, Any] = {}
    if enable_rotation:
        if len(files) != 1:
            raise ValueError(ERR_ROTATION_OUTPUT)
        try:
            rot = json.loads(rotation_config_json)
        except json.JSONDecodeError as e:
            raise ValueError(f"improperly formatted log rotation config: {e}") from None
        if not isinstance(rot, dict):
            raise ValueError("invalid log rotation config: not an object")
        for k in ("maxsize", "maxage", "maxbackups"):
            if k in rot and not isinstance(rot[k], int):
                raise ValueError(f"invalid log rotation config: {k} must be an integer")
    sinks: list[Any] = []
    if "/dev/null" not in outs:
        for o in sorted(outs):
            if o in ("default", "stderr"):
                sinks.append(StreamSink(sys.stderr))
            elif o == "stdout":
                sinks.append(StreamSink(sys.stdout))
            elif enable_rotation:
                sinks.append(RotatingFileSink(
                    o, maxsize_mb=int(rot.get("maxsize", 100)), maxage_days=int(rot.get("maxage", 0)),
                    maxbackups=int(rot.get("maxbackups", 0)), localtime=bool(rot.get("localtime", False)),
                    compress=bool(rot.get("compress", False)), max_bytes=rotation_max_bytes,
                ))
            else:
                sinks.append(FileSink(o))
    with _CONFIG.lock:
        old = _CONFIG.sinks
        _CONFIG.sinks = sinks
        _CONFIG.level = lvl
        _CONFIG.sampling = sampling
        _CONFIG._counts = {}
    for s in old:
        s.close()


def set_level(level: str) -> None:
    _CONFIG.level = parse_level(level)


def enabled(level: int) -> bool:
    return level >= _CONFIG.level


# --- the logger ---------------------------------------------------------------------

class Logger:
    """zap-like logger: ``log.info("msg", key=value, **{"dashed-key": v})``."""

    __slots__ = ("_fields", "name")

    def __init__(self, name: str = "", fields: tuple[tuple[str, Any], ...] = ()) -> None:
        self.name = name
        self._fields = fields

    def with_fields(self, **fields: Any) -> Logger:
        return Logger(self.name, self._fields + tuple(fields.items()))

    def _log(self, level: int, msg: str, fields: dict[str, Any], depth: int = 2) -> None:
        if not _CONFIG.sample(level, msg):
            return
        f = sys._getframe(depth)
        caller = short_caller(f.f_code.co_filename, f.f_lineno)
        items: Iterable[tuple[str, Any]] = self._fields + tuple(fields.items()) if self._fields else fields.items()
        if level >= ERROR:  # zap's production config adds the stack from error level up
            items = (*items, ("stacktrace", "".join(traceback.format_stack(f)).rstrip("\n")))
        _CONFIG.emit(encode_line(level, msg, caller, items))

    def debug(self, msg: str, **fields: Any) -> None:
        if _CONFIG.level <= DEBUG:
            self._log(DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        if _CONFIG.level <= INFO:
            self._log(INFO, msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        if _CONFIG.level <= WARN:
            self._log(WARN, msg, fields)

    warning = warn

    def error(self, msg: str, **fields: Any) -> None:
        if _CONFIG.level <= ERROR:
            self._log(ERROR, msg, fields)

    def panic(self, msg: str, **fields: Any) -> NoReturn:
        if _CONFIG.level <= PANIC:
            self._log(PANIC, msg, fields)
        raise LogPanic(msg)

    def fatal(self, msg: str, **fields: Any) -> NoReturn:
        self._log(FATAL, msg, fields)
        sys.exit(1)

    def log(self, level: int, msg: str, **fields: Any) -> None:
        if _CONFIG.level <= level:
            self._log(level, msg, fields)


_loggers: dict[str, Logger] = {}


def get_logger(name: str = "") -> Logger:
    lg = _loggers.get(name)
    if lg is None:
        lg = _loggers[name] = Logger(name)
    return lg


# --- stdlib logging bridge ------------------------------------------------------------

_PY_LEVELS = ((logging.CRITICAL, FATAL), (logging.ERROR, ERROR), (logging.WARNING, WARN), (logging.INFO, INFO))


class ZapHandler(logging.Handler):
    """A ``logging`` handler writing zap-shaped lines to the configured sinks."""

    def emit(self, record: logging.LogRecord) -> None:
        level = next((z for py, z in _PY_LEVELS if record.levelno >= py), DEBUG)
        if level < _CONFIG.level:
            return
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        fields: list[tuple[str, Any]] = []
        if record.exc_info and record.exc_info[1] is not None:
            fields.append(("error", str(record.exc_info[1])))
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            fields.extend(extra.items())
        if not _CONFIG.sample(level, msg):
            return
        caller = short_caller(record.pathname, record.lineno)
        _CONFIG.emit(encode_line(level, msg, caller, fields, t=record.created))


def install_stdlib_bridge(level: int = logging.INFO) -> ZapHandler:
    """Send the root ``logging`` logger's records through kvetch's sinks (idempotent)."""
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, ZapHandler):
            return h
    h = ZapHandler()
    root.addHandler(h)
    root.setLevel(level)
    return h
