"""One single-member server process (real etcd or kvetch) on loopback.

Both flavours take etcd's flags. The member listens on its own free client and
peer ports, keeps its data in its own directory and writes everything it logs
to ``<workdir>/<name>.log`` (appended across restarts, so a test can see the
log of every incarnation).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc

from e2e_support.flavours import server_command
from e2e_support.polling import wait_until
from e2e_support.ports import free_port

START_TIMEOUT = float(os.environ.get("KVETCH_E2E_START_TIMEOUT", "30"))
STOP_TIMEOUT = 10.0


class ServerStartError(RuntimeError):
    """The server exited or did not become ready before the deadline."""


class Server:
    """A member process; start it with :meth:`start`, stop it with :meth:`stop`."""

    def __init__(
        self,
        flavour: str,
        workdir: Path,
        name: str = "default",
        extra_args: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.flavour = flavour
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / f"{name}.data"
        self.log_path = self.workdir / f"{name}.log"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    # -- addresses ---------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def argv(self) -> list[str]:
        return [
            *server_command(self.flavour),
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.name}={self.peer_url}",
            "--log-level", "info",
            *self.extra_args,
        ]

    # -- lifecycle ---------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> Server:
        if self.is_running():
            raise RuntimeError("server already running")
        argv = self.argv()
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill(signal.SIGKILL)
            raise
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll a linearizable Range (needs a leader and an applied state)."""
        from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

        def ready() -> bool:
            if not self.is_running():
                raise ServerStartError(
                    f"{self.flavour} exited with {self.proc.returncode if self.proc else '?'}:\n"
                    + self.log_tail()
                )
            stub = rpc_pb2_grpc.KVStub(self.channel())
            stub.Range(rpc_pb2.RangeRequest(key=b"\0"), timeout=1.0)
            return True

        deadline = time.monotonic() + timeout
        while True:
            try:
                ready()
                return
            except ServerStartError:
                raise
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.flavour} not ready after {timeout}s:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def channel(self) -> grpc.Channel:
        """A gRPC channel to this member, shared by callers and closed on stop."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig``; for SIGKILL/SIGTERM wait for the exit and return its code."""
        self._close_channel()
        if not self.is_running():
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                return self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(STOP_TIMEOUT)
        return None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        return self.kill(signal.SIGTERM)

    def restart(self, timeout: float = START_TIMEOUT) -> Server:
        """Stop (if running) and start again on the same ports and data dir."""
        self.stop()
        wait_until(lambda: _port_free(self.client_port) and _port_free(self.peer_port),
                   timeout=10, what="ports to be released")
        return self.start(timeout)

    # -- logs --------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"Server({self.flavour}, {self.endpoint}, running={self.is_running()})"


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
