"""Long-running commands (watch, watch -i, lock, elect): same stream of output as etcdctl 3.5.1."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time

import pytest

from .conftest import ctl_env, etcd_tool, kvetchctl_cmd


class Proc:
    """A running command whose stdout lines are collected in the background."""

    def __init__(self, argv: list[str], stdin: bool = False) -> None:
        self.p = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ctl_env(),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.got: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line)

    def read(self, n: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n:
            try:
                self.got.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"only {len(self.got)} of {n} lines: {self.got}") from None
        return self.got[:n]

    def send(self, text: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(text)
        self.p.stdin.flush()

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        err = self.p.stderr.read() if self.p.stderr else ""
        return self.p.returncode, err


def _both(pair, *args: str, stdin: bool = False) -> tuple[Proc, Proc]:  # type: ignore[no-untyped-def]
    a = Proc([etcd_tool("etcdctl"), "--endpoints", pair.a.endpoint, *args], stdin)
    b = Proc([*kvetchctl_cmd(), "--endpoints", pair.b.endpoint, *args], stdin)
    return a, b


def _compare(pair, a: Proc, b: Proc, n: int) -> None:  # type: ignore[no-untyped-def]
    la = [pair.norm(x, pair.subs_a) for x in a.read(n)]
    lb = [pair.norm(x, pair.subs_b) for x in b.read(n)]
    assert lb == la


@pytest.mark.parametrize("fmt", ["simple", "json", "fields"])
def test_watch_history_and_live(pair, fmt) -> None:  # type: ignore[no-untyped-def]
    for k, v in [("w/a", "1"), ("w/b", "2"), ("w/a", "3")]:
        pair.same("put", k, v)
    pair.same("del", "w/b")
    # the history arrives as one response (one header) with four events
    lines = {"simple": 11, "json": 1, "fields": 4 + 4 + 4 * 6 + 2 * 6}[fmt]
    a, b = _both(pair, "watch", "w/", "--prefix", "--prev-kv", "--rev", "2", "-w", fmt)
    try:
        _compare(pair, a, b, lines)
        pair.same("put", "w/c", "live")
        more = {"simple": 3, "json": 1, "fields": 11}[fmt]
        _compare(pair, a, b, lines + more)
    finally:
        a.stop()
        b.stop()


def test_watch_range_and_exec(pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pair.same("put", "r1", "x")
    pair.same("put", "r5", "y")
    a, b = _both(pair, "watch", "r0", "r3", "--rev", "1", "--", "sh", "-c", 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY"')
    try:
        _compare(pair, a, b, 4)
        assert a.got[3] == '"PUT" "r1"\n'
    finally:
        a.stop()
        b.stop()


def test_watch_compacted_revision(pair) -> None:  # type: ignore[no-untyped-def]
    for i in range(4):
        pair.same("put", "c", str(i))
    pair.same("compaction", "4")
    pair.same("watch", "c", "--rev", "2", "-w", "json")
    pair.same("watch", "c", "--rev", "2")


def test_watch_interactive(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = _both(pair, "watch", "-i", stdin=True)
    try:
        for p in (a, b):
            p.send("watch ia\n")
            p.send("watch ib --prev-kv\n")
            p.send("bogus\n")
        # no way to see the watches are set up: wait for them through a marker key
        deadline = time.monotonic() + 20
        n = 0
        while a.lines.qsize() < 3 or b.lines.qsize() < 3:
            assert time.monotonic() < deadline
            n += 1
            pair.etcdctl("put", "ia", f"m{n}")
            pair.kvetchctl("put", "ia", f"m{n}")
            time.sleep(0.2)
        for p in (a, b):
            while not p.lines.empty():
                p.lines.get()
        pair.etcdctl("put", "ib", "1")
        pair.kvetchctl("put", "ib", "1")
        pair.etcdctl("put", "ib", "2")
        pair.kvetchctl("put", "ib", "2")
        la = [a.lines.get(timeout=20) for _ in range(7)]
        lb = [b.lines.get(timeout=20) for _ in range(7)]
        assert lb == la
    finally:
        ra = a.stop()
        rb = b.stop()
    assert "Invalid command bogus (only support watch)" in ra[1]
    assert "Invalid command bogus (only support watch)" in rb[1]


def test_lock_and_elect_output_and_interop(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = _both(pair, "lock", "mylock")
    try:
        la, lb = a.read(2), b.read(2)
        assert la[0].startswith("mylock/") and lb[0].startswith("mylock/")
        assert la[1] == lb[1] == "\n"
        held = pair.etcdctl("get", "mylock", "--prefix", "-w", "json")
        assert '"lease"' in held.out
    finally:
        assert a.stop()[0] == b.stop()[0] == 0
    pair.same("get", "mylock", "--prefix")  # both released their key
    # kvetchctl lock and etcdctl lock exclude each other on the same server
    holder = Proc([etcd_tool("etcdctl"), "--endpoints", pair.b.endpoint, "lock", "shared"])
    waiter = Proc([*kvetchctl_cmd(), "--endpoints", pair.b.endpoint, "lock", "shared"])
    try:
        holder.read(2)
        time.sleep(1.0)
        assert waiter.got == [] and waiter.lines.empty()
        holder.stop()
        waiter.read(2)
    finally:
        holder.stop()
        waiter.stop()
    a, b = _both(pair, "elect", "el", "proposal")
    try:
        la, lb = a.read(2), b.read(2)
        assert la[0].startswith("el/") and lb[0].startswith("el/") and la[1] == lb[1] == "proposal\n"
        oa, ob = _both(pair, "elect", "-l", "el")
        try:
            assert [x for x in oa.read(2)][1] == [x for x in ob.read(2)][1] == "proposal\n"
        finally:
            oa.stop()
            ob.stop()
    finally:
        assert a.stop()[0] == b.stop()[0] == 0
    pair.same("elect", "el")
    pair.same("elect", "el", "x", "-l")
    pair.same("lock")
