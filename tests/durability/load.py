"""Concurrent write load that records exactly which writes were acknowledged.

Each worker thread has its own gRPC channel and writes keys nobody else
writes: single puts ``w/<worker>/<n>`` and two-key txns
``t/<worker>/<n>/a`` + ``t/<worker>/<n>/b`` (same value, one revision). A
write counts as acknowledged only when its RPC returned OK.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import grpc
from e2e_support.grpcapi import pb, pbg

RPC_TIMEOUT = 5.0


@dataclass
class Ack:
    key: bytes
    value: bytes
    revision: int


@dataclass
class LoadResult:
    acked_puts: list[Ack] = field(default_factory=list)
    acked_txns: list[Ack] = field(default_factory=list)  # key = the txn's prefix t/<w>/<n>/
    attempted_txns: list[bytes] = field(default_factory=list)
    attempted_puts: list[tuple[bytes, bytes]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class WriteLoad:
    def __init__(self, endpoint: str, workers: int = 4, tag: str = "") -> None:
        self.endpoint = endpoint
        self.workers = workers
        self.tag = tag
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]

    def start(self) -> WriteLoad:
        for t in self._threads:
            t.start()
        return self

    def acked(self) -> int:
        with self._lock:
            return len(self.result.acked_puts) + len(self.result.acked_txns)

    def wait_dead(self, timeout: float = 30.0) -> LoadResult:
        """After the server died: every worker keeps trying until it gave up (20 errors)."""
        for t in self._threads:
            t.join(timeout)
        self._stop.set()
        return self.result

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(RPC_TIMEOUT * 3)
        return self.result

    def _run(self, worker: int) -> None:
        channel = grpc.insecure_channel(self.endpoint)
        kv = pbg.KVStub(channel)
        n = 0
        failures = 0
        try:
            while not self._stop.is_set() and failures < 20:
                n += 1
                value = f"{self.tag}{worker}-{n}".encode()
                try:
                    if n % 3 == 0:
                        prefix = f"t{self.tag}/{worker}/{n}/".encode()
                        with self._lock:
                            self.result.attempted_txns.append(prefix)
                        resp = kv.Txn(pb.TxnRequest(success=[
                            pb.RequestOp(request_put=pb.PutRequest(key=prefix + b"a", value=value)),
                            pb.RequestOp(request_put=pb.PutRequest(key=prefix + b"b", value=value)),
                        ]), timeout=RPC_TIMEOUT)
                        with self._lock:
                            self.result.acked_txns.append(Ack(prefix, value, resp.header.revision))
                    else:
                        key = f"w{self.tag}/{worker}/{n}".encode()
                        with self._lock:
                            self.result.attempted_puts.append((key, value))
                        resp = kv.Put(pb.PutRequest(key=key, value=value), timeout=RPC_TIMEOUT)
                        with self._lock:
                            self.result.acked_puts.append(Ack(key, value, resp.header.revision))
                except grpc.RpcError as exc:
                    failures += 1
                    with self._lock:
                        self.result.errors.append(f"{exc.code().name}: {exc.details()}")
        finally:
            channel.close()
