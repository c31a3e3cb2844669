"""Traffic that runs during every step: puts, deletes, txns, ranges, leases and watches.

Several client threads, each homed on one member and failing over to the
others, record every request in a History.  Watchers, one per member slot,
follow the whole key prefix and resume from the last revision they saw.
Bounded in op count and rate so that a 2-core machine copes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .history import History, Op
from .rpc import Client, RpcError

PREFIX = "/compat/"


@dataclass
class WatchEvent:
    revision: int
    key: str
    type: str  # PUT | DELETE
    value: str


@dataclass
class Watcher:
    slot: int
    events: list[WatchEvent] = field(default_factory=list)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    last_revision: int = 0
    endpoint: str = ""


class Workload:
    def __init__(self, endpoints: Callable[[], list[str]], history: History, seed: int, clients: int = 3,
                 keys: int = 5, max_ops: int = 4000, pause: float = 0.03, watchers: int = 2) -> None:
        self.endpoints = endpoints
        self.history = history
        self.rng = random.Random(seed)
        self.n_clients = clients
        self.keys = [f"{PREFIX}k{i}" for i in range(keys)]
        self.max_ops = max_ops
        self.pause = pause
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.watchers = [Watcher(i) for i in range(watchers)]
        self._seq = 0
        self._lock = threading.Lock()
        self.limit = 0  # ops allowed so far; the executor grants a budget per step

    def grant(self, n: int) -> None:
        """Allow `n` more ops (bounded traffic per step)."""
        self.limit = len(self.history.ops) + n if len(self.history.ops) < self.max_ops else self.limit

    # ---- lifecycle
    def start(self) -> None:
        for i in range(self.n_clients):
            t = threading.Thread(target=self._client, args=(i, random.Random(self.rng.random())),
                                 daemon=True, name=f"client-{i}")
            t.start()
            self.threads.append(t)
        for w in self.watchers:
            t = threading.Thread(target=self._watch, args=(w,), daemon=True, name=f"watch-{w.slot}")
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=10)

    def _next_value(self, client: str) -> str:
        with self._lock:
            self._seq += 1
            return f"{client}-{self._seq}"

    # ---- one client
    def _client(self, idx: int, rng: random.Random) -> None:
        name = f"c{idx}"
        lease_key = f"{PREFIX}lease/{name}"
        current_lease = 0
        lease_tainted = False
        home = idx
        client: Client | None = None
        client_url = ""
        while not self.stop_event.is_set():
            if len(self.history.ops) >= self.limit:
                self.stop_event.wait(0.05)
                continue
            eps = self.endpoints()
            if not eps:
                time.sleep(0.1)
                continue
            url = eps[home % len(eps)]
            if url != client_url:
                if client:
                    client.close()
                client, client_url = Client(url, timeout=2.0), url
            assert client is not None
            r = rng.random()
            key = rng.choice(self.keys)
            op: Op | None = None
            try:
                if r < 0.33:
                    op = self.history.invoke(name, "put", key, value=self._next_value(name), endpoint=url)
                    resp = client.put(key.encode(), (op.value or "").encode())
                    self.history.complete(op, "ok", revision=resp.header.revision)
                elif r < 0.63:
                    op = self.history.invoke(name, "get", key, endpoint=url)
                    g = client.get(key.encode())
                    kv = g.kvs[0] if g.kvs else None
                    self.history.complete(op, "ok", revision=g.header.revision,
                                          out_value=kv.value.decode() if kv else None,
                                          out_mod_rev=kv.mod_revision if kv else 0)
                elif r < 0.78:
                    expected = self._last_seen(key, rng)
                    op = self.history.invoke(name, "cas", key, value=self._next_value(name), expected=expected,
                                             endpoint=url)
                    t = client.cas(key.encode(), None if expected is None else expected.encode(),
                                   (op.value or "").encode())
                    out = None
                    if not t.succeeded and t.responses and t.responses[0].response_range.kvs:
                        out = t.responses[0].response_range.kvs[0].value.decode()
                    self.history.complete(op, "ok", revision=t.header.revision, succeeded=t.succeeded,
                                          out_value=out)
                elif r < 0.88:
                    op = self.history.invoke(name, "delete", key, endpoint=url)
                    d = client.delete(key.encode())
                    self.history.complete(op, "ok", revision=d.header.revision, deleted=d.deleted)
                elif not lease_tainted:
                    if current_lease and rng.random() < 0.5:
                        op = self.history.invoke(name, "lease-revoke", lease_key, lease=current_lease, endpoint=url)
                        lr = client.lease_revoke(current_lease)
                        self.history.complete(op, "ok", revision=lr.header.revision)
                        current_lease = 0
                    else:
                        grant = client.lease_grant(300)
                        op = self.history.invoke(name, "lease-put", lease_key, value=self._next_value(name),
                                                 lease=grant.ID, endpoint=url)
                        resp = client.put(lease_key.encode(), (op.value or "").encode(), lease=grant.ID)
                        self.history.complete(op, "ok", revision=resp.header.revision)
                        current_lease = grant.ID
            except RpcError as exc:
                if op is not None:
                    if exc.definitely_not_applied or not op.is_write():
                        self.history.complete(op, "fail", error=str(exc))
                    else:
                        self.history.complete(op, "unknown", error=str(exc))
                        if op.kind.startswith("lease"):
                            lease_tainted = True
                home += 1  # fail over to the next member
                time.sleep(0.05)
            self.stop_event.wait(self.pause)
        if client:
            client.close()

    def _last_seen(self, key: str, rng: random.Random) -> str | None:
        for op in reversed(self.history.ops[-50:]):
            if op.key == key and op.outcome == "ok":
                if op.kind == "get":
                    return op.out_value
                if op.kind in ("put", "cas") and op.value:
                    return op.value
        return None if rng.random() < 0.5 else "no-such-value"

    # ---- watchers
    def _watch(self, w: Watcher) -> None:
        stop = self.stop_event
        attempt = w.slot
        while not stop.is_set():
            eps = self.endpoints()
            if not eps:
                time.sleep(0.1)
                continue
            url = eps[attempt % len(eps)]
            w.endpoint = url
            try:
                with Client(url, timeout=5) as c:
                    for resp in c.watch(PREFIX.encode(), w.last_revision + 1 if w.last_revision else 1, stop):
                        if resp.canceled:
                            w.errors.append(f"canceled by {url}: {resp.cancel_reason}")
                            break
                        for ev in resp.events:
                            w.events.append(WatchEvent(ev.kv.mod_revision, ev.kv.key.decode(),
                                                       "DELETE" if ev.type == 1 else "PUT", ev.kv.value.decode()))
                            w.last_revision = ev.kv.mod_revision
            except RpcError as exc:
                if len(w.errors) < 50:
                    w.errors.append(f"{url}: {exc}")
            except Exception as exc:  # grpc iterator errors surface in several types
                if len(w.errors) < 50:
                    w.errors.append(f"{url}: {type(exc).__name__}: {exc}")
            if stop.is_set():
                break
            w.reconnects += 1
            attempt += 1
            stop.wait(0.3)
