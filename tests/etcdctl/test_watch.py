"""etcdctl watch running in the background while puts and deletes happen."""

from __future__ import annotations

import json


def test_watch_live_events(ctl) -> None:
    ctl.ok("put", "before", "x")
    # start at the next revision so no event is lost while the watch registers
    rev = ctl.ok("get", "before", "-w", "json").json()["header"]["revision"]
    watch = ctl.bg("watch", "w", "--prefix", f"--rev={rev + 1}")
    ctl.ok("put", "w1", "a")
    ctl.ok("put", "other", "ignored")
    ctl.ok("put", "w2", "b")
    ctl.ok("del", "w1")
    assert watch.read_lines(9) == ["PUT", "w1", "a", "PUT", "w2", "b", "DELETE", "w1", ""]


def test_watch_from_past_revision_with_prev_kv(ctl) -> None:
    ctl.ok("put", "w", "1")  # rev 2
    ctl.ok("put", "w", "2")  # rev 3
    ctl.ok("del", "w")  # rev 4
    watch = ctl.bg("watch", "w", "--rev=2", "--prev-kv")
    assert watch.read_lines(13) == [
        "PUT", "w", "1",
        "PUT", "w", "1", "w", "2",
        "DELETE", "w", "2", "w", "",
    ]
    ctl.ok("put", "w", "3")
    assert watch.read_lines(3) == ["PUT", "w", "3"]


def test_watch_json_from_revision(ctl) -> None:
    ctl.ok("put", "j", "x")  # rev 2
    watch = ctl.bg("watch", "j", "--rev=1", "-w", "json")
    event = json.loads(watch.read_lines(1)[0])
    assert event["Events"][0]["kv"]["key"] == "ag=="
    assert event["Events"][0]["kv"]["mod_revision"] == 2
    assert event["Header"]["revision"] >= 2
    assert event["Canceled"] is False
    assert event["CompactRevision"] == 0


def test_watch_compacted_revision_is_canceled(ctl) -> None:
    for i in range(4):
        ctl.ok("put", "c", str(i))  # revs 2..5
    ctl.ok("compaction", "4")
    watch = ctl.bg("watch", "c", "--rev=2")
    # both versions print the reason on stderr and exit with code 5
    assert watch.proc.wait(10) == 5
    assert watch.read_lines(0) == []
    assert watch.stderr_now().splitlines()[-2:] == [
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)",
        "Error: watch is canceled by the server",
    ]


def test_watch_interactive(ctl) -> None:
    ctl.ok("put", "i", "0")  # rev 2
    watch = ctl.bg("watch", "-i", stdin="watch i --rev=2\n")
    assert watch.read_lines(3) == ["PUT", "i", "0"]
