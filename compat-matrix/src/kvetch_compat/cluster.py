"""A cluster of server processes on loopback: start, stop, replace, add and remove members.

Owns ports, data dirs, processes and log files.  Every state change is
confirmed by reading it back (member list, leader, health), never by trusting
an API reply alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .flavours import Flavour, MemberConfig
from .rpc import Client, RpcError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll `cond` until it returns a truthy value or the deadline passes (returns the last value)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = cond()
        except Exception as exc:
            last = None
            _ = exc
        if last:
            return last
        if time.monotonic() >= deadline:
            return last
        time.sleep(interval)


@dataclass
class Member:
    name: str
    flavour: Flavour
    client_url: str
    peer_url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    member_id: int = 0
    starts: int = 0
    log_offsets: list[int] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 5.0) -> Client:
        return Client(self.client_url, timeout)


class Cluster:
    """Members in one work dir; the token makes each cluster distinct."""

    def __init__(self, workdir: Path, token: str, snapshot_count: int | None = None) -> None:
        self.workdir = workdir
        self.token = token
        self.snapshot_count = snapshot_count
        self.members: dict[str, Member] = {}
        self.removed: list[Member] = []
        self.events: list[str] = []

    # ---- membership strings
    def initial_cluster(self, names: list[str] | None = None) -> str:
        names = names if names is not None else list(self.members)
        return ",".join(f"{n}={self.members[n].peer_url}" for n in names)

    def new_member(self, name: str, flavour: Flavour) -> Member:
        cp, pp = free_port(), free_port()
        m = Member(name, flavour, f"http://127.0.0.1:{cp}", f"http://127.0.0.1:{pp}",
                   self.workdir / f"{name}.data", self.workdir / f"{name}.log")
        self.members[name] = m
        return m

    def _spawn(self, m: Member, state: str, initial: str) -> None:
        cfg = MemberConfig(m.name, str(m.data_dir), m.client_url, m.peer_url, initial, state, self.token,
                           self.snapshot_count)
        argv = m.flavour.argv(cfg)
        m.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(m.log_path, "ab") as log:
            m.log_offsets.append(log.tell())
            log.write(f"### kvetch-compat: start #{m.starts + 1} {m.flavour.kind}@{m.flavour.version}: "
                      f"{' '.join(argv)}\n".encode())
            log.flush()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_", "KVETCH_"))}
            m.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        m.starts += 1
        self.events.append(f"start {m.name} ({m.flavour.kind}@{m.flavour.version}, {state})")

    def start_all(self, timeout: float = 30) -> None:
        initial = self.initial_cluster()
        for m in self.members.values():
            self._spawn(m, "new", initial)
        self.wait_ready(list(self.members), timeout)
        self.refresh_ids()

    def start(self, name: str, timeout: float = 30, wait: bool = True) -> bool:
        m = self.members[name]
        state = "existing"
        self._spawn(m, state, self.initial_cluster())
        return self.wait_ready([name], timeout) if wait else True

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
        m = self.members[name]
        if m.proc is None:
            return
        if m.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(m.proc.pid, sig)
            try:
                m.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(m.proc.pid, signal.SIGKILL)
                m.proc.wait(10)
        self.events.append(f"stop {name} ({sig.name}) rc={m.proc.returncode}")

    def stop_all(self) -> None:
        for name in list(self.members):
            self.stop(name, signal.SIGTERM, timeout=10)

    def replace(self, name: str, flavour: Flavour, timeout: float = 30) -> bool:
        """Stop a member and start a different binary on the same data dir."""
        self.stop(name)
        self.members[name].flavour = flavour
        return self.start(name, timeout)

    # ---- readiness and reading state
    def ready(self, name: str) -> bool:
        m = self.members[name]
        if not m.alive:
            return False
        ok, _ = m.flavour.health(m.client_url)
        return ok

    def wait_ready(self, names: list[str], timeout: float) -> bool:
        return bool(wait_for(lambda: all(self.ready(n) for n in names), timeout, 0.3))

    def alive_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.alive]

    def refresh_ids(self) -> None:
        for m in self.alive_members():
            try:
                with m.client() as c:
                    m.member_id = c.status().header.member_id
            except RpcError:
                pass

    def leader(self) -> str | None:
        """Name of the member all live members agree is the leader (None if they disagree)."""
        ids = set()
        for m in self.alive_members():
            try:
                with m.client(3) as c:
                    ids.add(c.status().leader)
            except RpcError:
                return None
        if len(ids) != 1:
            return None
        lid = ids.pop()
        for m in self.members.values():
            if m.member_id == lid:
                return m.name
        return None

    def leader_views(self) -> dict[str, str]:
        """What each live member reports as leader (member name, or the raw id when unknown)."""
        names = {m.member_id: m.name for m in self.members.values()}
        out: dict[str, str] = {}
        for m in self.alive_members():
            try:
                with m.client(3) as c:
                    st = c.status()
                out[m.name] = names.get(st.leader, f"{st.leader:x}" if st.leader else "none")
            except RpcError as exc:
                out[m.name] = f"error: {exc.code}"
        return out

    def wait_leader(self, timeout: float = 20) -> str | None:
        return wait_for(self.leader, timeout, 0.3)

    def move_leader(self, target: str, timeout: float = 20) -> bool:
        cur = self.wait_leader(timeout)
        if cur is None:
            return False
        if cur == target:
            return True
        tid = self.members[target].member_id
        try:
            with self.members[cur].client(15) as c:
                c.move_leader(tid)
        except RpcError as exc:
            self.events.append(f"move-leader {cur}->{target}: {exc}")
        return wait_for(lambda: self.leader() == target, timeout, 0.3) is True

    def add_member(self, name: str, flavour: Flavour, timeout: float = 40) -> tuple[bool, str]:
        m = self.new_member(name, flavour)
        via = next(iter(x for x in self.alive_members() if x.name != name), None)
        if via is None:
            return False, "no live member to add through"
        try:
            resp = self._retry_unhealthy(lambda c: c.member_add([m.peer_url]), via)
            m.member_id = resp.member.ID
        except RpcError as exc:
            # the reply may have been lost: read the member list back
            listed = self.read_member_ids(via)
            match = [i for i, urls in listed.items() if m.peer_url in urls]
            if not match:
                del self.members[name]
                return False, f"MemberAdd failed: {exc}"
            m.member_id = match[0]
        names = [n for n in self.members if True]
        self._spawn(m, "existing", self.initial_cluster(names))
        ok = self.wait_ready([name], timeout)
        return ok, "" if ok else "new member did not become healthy"

    def remove_member(self, name: str, timeout: float = 20) -> tuple[bool, str]:
        m = self.members[name]
        via = next(iter(x for x in self.alive_members() if x.name != name), None)
        if via is None:
            return False, "no live member to remove through"
        err = ""
        try:
            self._retry_unhealthy(lambda c: c.member_remove(m.member_id), via)
        except RpcError as exc:
            err = str(exc)
        gone = wait_for(lambda: m.member_id not in self.read_member_ids(via), timeout, 0.3)
        self.stop(name)
        self.removed.append(self.members.pop(name))
        return bool(gone), err

    def _retry_unhealthy(self, call: Callable[[Client], Any], via: Member, timeout: float = 30) -> Any:
        """Membership changes are refused ("unhealthy cluster") until every member has been connected
        for a while (etcd's strict reconfiguration check); retry those refusals, nothing else."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with via.client(15) as c:
                    return call(c)
            except RpcError as exc:
                if "unhealthy cluster" not in exc.message or time.monotonic() > deadline:
                    raise
                self.events.append(f"membership change refused, retrying: {exc}")
                time.sleep(1.0)

    @staticmethod
    def read_member_ids(via: Member) -> dict[int, list[str]]:
        with via.client(5) as c:
            return {x.ID: list(x.peerURLs) for x in c.member_list().members}
