"""etcdctl lock and elect with two contending processes."""

from __future__ import annotations

import re
import signal

from e2e_support import wait_until


def test_lock_runs_command_while_held(ctl) -> None:
    assert ctl.ok("lock", "mylock", "echo", "held").stdout == "held\n"
    # the lock key is gone once the command finished
    assert ctl.ok("get", "mylock", "--prefix").stdout == ""


def test_lock_two_contenders(ctl) -> None:
    first = ctl.bg("lock", "L")
    key1 = first.read_lines(1)[0]
    assert re.fullmatch(r"L/[0-9a-f]+", key1), key1
    second = ctl.bg("lock", "L")
    # the second waits: its lock key exists (queued behind the first) but it prints nothing
    def keys() -> list[str]:
        return [line for line in ctl.ok("get", "L", "--prefix", "--keys-only").lines if line]
    wait_until(lambda: len(keys()) == 2, timeout=10, what="second lock waiter")
    assert second.proc.poll() is None
    assert key1 in keys()
    # the first holder goes away: its session lease is revoked, the second gets the lock
    first.close()
    key2 = second.read_lines(1, timeout=15)[0]
    assert re.fullmatch(r"L/[0-9a-f]+", key2) and key2 != key1
    wait_until(lambda: keys() == [key2], timeout=10, what="only the second lock key left")


def test_elect_and_observe(ctl) -> None:
    leader = ctl.bg("elect", "el", "p1")
    lines = leader.read_lines(2)
    assert re.fullmatch(r"el/[0-9a-f]+", lines[0])
    assert lines[1] == "p1"
    observer = ctl.bg("elect", "-l", "el")
    assert observer.read_lines(2) == lines
    candidate = ctl.bg("elect", "el", "p2")
    leader.proc.send_signal(signal.SIGINT)
    # the candidate wins once the leader resigned; the observer sees the new leader
    won = candidate.read_lines(2, timeout=15)
    assert won[1] == "p2"
    assert observer.read_until(lambda line: line == "p2", timeout=15)[-2] == won[0]
