"""--quota-backend-bytes: writes past the quota raise NOSPACE; then only reads, deletes and
compaction work until the alarm is disarmed (after compaction and defrag free space)."""

from __future__ import annotations

from e2e_support.etcdctl import run_etcdctl

QUOTA = 400_000
VALUE = "x" * 20_000


def test_nospace_alarm_lifecycle(server_factory, flavour: str) -> None:
    srv = server_factory(flavour, extra_args=("--quota-backend-bytes", str(QUOTA)))
    failed = None
    for i in range(200):
        res = run_etcdctl("3.5", "put", f"k{i:03d}", VALUE, server=srv)
        if res.returncode != 0:
            failed = res
            break
    assert failed is not None, "quota never reached"
    assert failed.error == "etcdserver: mvcc: database space exceeded"
    alarms = run_etcdctl("3.5", "alarm", "list", server=srv, check=True).stdout
    assert "alarm:NOSPACE" in alarms

    # reads and deletes still work, writes do not
    assert run_etcdctl("3.5", "get", "k000", "--keys-only", server=srv, check=True).stdout.strip() == "k000"
    assert run_etcdctl("3.5", "put", "small", "v", server=srv).error == "etcdserver: mvcc: database space exceeded"
    deleted = run_etcdctl("3.5", "del", "k", "--prefix", server=srv, check=True).stdout.strip()
    assert int(deleted) >= 1
    rev = run_etcdctl("3.5", "get", "k000", "-w", "json", server=srv, check=True).json()["header"]["revision"]
    run_etcdctl("3.5", "compaction", "--physical", str(rev), server=srv, check=True)
    run_etcdctl("3.5", "defrag", server=srv, check=True)
    # still refused until the alarm is disarmed
    assert run_etcdctl("3.5", "put", "small", "v", server=srv).returncode != 0
    run_etcdctl("3.5", "alarm", "disarm", server=srv, check=True)
    assert run_etcdctl("3.5", "alarm", "list", server=srv, check=True).stdout.strip() == ""
    assert run_etcdctl("3.5", "put", "small", "v", server=srv, check=True).stdout == "OK\n"
