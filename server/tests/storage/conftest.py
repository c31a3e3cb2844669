"""Fixtures for storage tests: a fresh backend + store, and a real etcd 3.5.1 as an oracle."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kvetch.storage.backend import Backend
from kvetch.storage.mvcc import KVStore


@pytest.fixture
def backend(tmp_path) -> Iterator[Backend]:
    b = Backend.open_data_dir(tmp_path / "data")
    yield b
    if not b.closed:
        b.close()


@pytest.fixture
def store(backend) -> Iterator[KVStore]:
    s = KVStore(backend)
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdOracle:
    endpoint: str
    proc: subprocess.Popen[bytes]
    kv: object
    maintenance: object
    lease: object
    watch: object


@pytest.fixture
def etcd(tmp_path) -> Iterator[EtcdOracle]:
    """A real etcd 3.5.1 on free loopback ports, with gRPC stubs."""
    grpc = pytest.importorskip("grpc")
    from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    binary = shutil.which("etcd")
    if binary is None:
        pytest.skip("etcd 3.5.1 not on PATH")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    if "3.5.1" not in out:
        pytest.skip(f"etcd on PATH is not 3.5.1: {out.splitlines()[0]}")
    client, peer = _free_port(), _free_port()
    cu, pu = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    log = open(tmp_path / "etcd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            binary,
            "--name",
            "default",
            "--data-dir",
            str(tmp_path / "etcd-data"),
            "--listen-client-urls",
            cu,
            "--advertise-client-urls",
            cu,
            "--listen-peer-urls",
            pu,
            "--initial-advertise-peer-urls",
            pu,
            "--initial-cluster",
            f"default={pu}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{client}")
    maint = rpc_pb2_grpc.MaintenanceStub(channel)
    deadline = time.monotonic() + 30
    while True:
        try:
            maint.Status(rpc_pb2.StatusRequest(), timeout=1)
            break
        except grpc.RpcError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"etcd did not start: {(tmp_path / 'etcd.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.05)
    try:
        yield EtcdOracle(
            cu,
            proc,
            rpc_pb2_grpc.KVStub(channel),
            maint,
            rpc_pb2_grpc.LeaseStub(channel),
            rpc_pb2_grpc.WatchStub(channel),
        )
    finally:
        channel.close()
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
