"""etcdctl put / get / del against the server: every get option, JSON output, bad input."""

from __future__ import annotations

import base64

import pytest


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def seed(ctl) -> None:
    """k1..k3 at revisions 2..4 (fresh server starts at revision 1), k2 rewritten at 5."""
    for key, value in (("k1", "v1"), ("k2", "v2"), ("k3", "v3"), ("k2", "v2b")):
        assert ctl.ok("put", key, value).stdout == "OK\n"


def test_put_get_simple(ctl) -> None:
    assert ctl.ok("put", "foo", "bar").stdout == "OK\n"
    assert ctl.ok("get", "foo").stdout == "foo\nbar\n"
    assert ctl.ok("get", "foo", "--print-value-only").stdout == "bar\n"
    assert ctl.ok("get", "missing").stdout == ""


def test_get_prefix_json(ctl) -> None:
    seed(ctl)
    ctl.ok("put", "other", "x")
    out = ctl.ok("get", "k", "--prefix", "-w", "json").json()
    assert out["header"]["revision"] == 6
    assert out["count"] == 3
    assert "more" not in out
    assert out["kvs"] == [
        {"key": b64("k1"), "create_revision": 2, "mod_revision": 2, "version": 1, "value": b64("v1")},
        {"key": b64("k2"), "create_revision": 3, "mod_revision": 5, "version": 2, "value": b64("v2b")},
        {"key": b64("k3"), "create_revision": 4, "mod_revision": 4, "version": 1, "value": b64("v3")},
    ]
    assert set(out["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}


def test_get_range_end_and_from_key(ctl) -> None:
    seed(ctl)
    assert ctl.ok("get", "k1", "k3").stdout == "k1\nv1\nk2\nv2b\n"
    assert ctl.ok("get", "k2", "--from-key", "--keys-only").stdout == "k2\n\nk3\n\n"


def test_get_rev(ctl) -> None:
    seed(ctl)
    assert ctl.ok("get", "k2", "--rev=3").stdout == "k2\nv2\n"
    assert ctl.ok("get", "k2", "--rev=5").stdout == "k2\nv2b\n"
    assert ctl.ok("get", "k3", "--rev=3").stdout == ""
    old = ctl.ok("get", "k", "--prefix", "--rev=3", "-w", "json").json()
    # the header carries the current revision, not the requested one
    assert old["header"]["revision"] == 5
    assert [base64.b64decode(kv["key"]).decode() for kv in old["kvs"]] == ["k1", "k2"]


@pytest.mark.parametrize(("sort_by", "order", "expected"), [
    ("KEY", "DESCEND", ["k3", "k2", "k1"]),
    ("KEY", "ASCEND", ["k1", "k2", "k3"]),
    ("MODIFY", "DESCEND", ["k2", "k3", "k1"]),
    ("CREATE", "DESCEND", ["k3", "k2", "k1"]),
    ("VERSION", "DESCEND", ["k2", "k1", "k3"]),  # ties (version 1) keep key order
    ("VALUE", "ASCEND", ["k1", "k2", "k3"]),
    ("VALUE", "DESCEND", ["k3", "k2", "k1"]),
])
def test_get_sort(ctl, sort_by: str, order: str, expected: list[str]) -> None:
    seed(ctl)
    out = ctl.ok("get", "k", "--prefix", "--keys-only", f"--sort-by={sort_by}", f"--order={order}")
    assert [line for line in out.lines if line] == expected


def test_get_limit_reports_more_and_full_count(ctl) -> None:
    seed(ctl)
    out = ctl.ok("get", "k", "--prefix", "--limit=2", "-w", "json").json()
    assert len(out["kvs"]) == 2
    assert out["more"] is True
    assert out["count"] == 3
    assert ctl.ok("get", "k", "--prefix", "--limit=1", "--sort-by=KEY", "--order=DESCEND").stdout == "k3\nv3\n"


def test_get_keys_only(ctl) -> None:
    seed(ctl)
    out = ctl.ok("get", "k", "--prefix", "--keys-only", "-w", "json").json()
    assert [kv.get("value") for kv in out["kvs"]] == [None, None, None]
    assert [kv["key"] for kv in out["kvs"]] == [b64("k1"), b64("k2"), b64("k3")]


def test_get_count_only(ctl) -> None:
    seed(ctl)
    if ctl.version == "3.4":
        res = ctl("get", "k", "--prefix", "--count-only")
        assert res.returncode != 0
        assert res.error == "unknown flag: --count-only"
        return
    out = ctl.ok("get", "k", "--prefix", "--count-only", "-w", "fields").stdout
    assert '"Count" : 3' in out
    assert '"More" : false' in out
    assert '"Key"' not in out
    res = ctl("get", "k", "--prefix", "--count-only")
    assert res.returncode != 0
    assert res.error == "--count-only is only for `--write-out=fields`"


def test_get_serializable(ctl) -> None:
    seed(ctl)
    assert ctl.ok("get", "k1", "--consistency=s").stdout == "k1\nv1\n"


def test_put_prev_kv_and_ignore_value(ctl) -> None:
    ctl.ok("put", "a", "1")
    assert ctl.ok("put", "a", "2", "--prev-kv").stdout == "OK\na\n1\n"
    assert ctl.ok("put", "a", "--ignore-value").stdout == "OK\n"
    assert ctl.ok("get", "a", "-w", "json").json()["kvs"][0]["version"] == 3
    assert ctl.ok("get", "a").stdout == "a\n2\n"
    res = ctl("put", "missing", "--ignore-value")
    assert res.returncode == 1
    assert res.error == "etcdserver: key not found"


def test_del_prefix_prev_kv(ctl) -> None:
    seed(ctl)
    ctl.ok("put", "other", "x")
    out = ctl.ok("del", "k", "--prefix", "--prev-kv", "-w", "json").json()
    assert out["deleted"] == 3
    assert out["header"]["revision"] == 7
    assert [(kv["key"], kv["value"]) for kv in out["prev_kvs"]] == [
        (b64("k1"), b64("v1")), (b64("k2"), b64("v2b")), (b64("k3"), b64("v3"))]
    assert ctl.ok("get", "k", "--prefix").stdout == ""
    assert ctl.ok("get", "other").stdout == "other\nx\n"
    assert ctl.ok("del", "nothing").stdout == "0\n"
    assert ctl.ok("del", "other", "--prev-kv").stdout == "1\nother\nx\n"
    # a delete of nothing does not bump the revision
    assert ctl.ok("get", "x", "-w", "json").json()["header"]["revision"] == 8


def test_del_from_key(ctl) -> None:
    seed(ctl)
    assert ctl.ok("del", "k2", "--from-key").stdout == "2\n"
    assert ctl.ok("get", "", "--from-key", "--keys-only").stdout == "k1\n\n"


def test_bad_input_empty_key(ctl) -> None:
    res = ctl("put", "", "x")
    assert res.returncode == 1
    assert res.error == "etcdserver: key is not provided"
    res = ctl("get", "")
    assert res.returncode == 1
    assert res.error == "etcdserver: key is not provided"


def test_bad_input_revisions(ctl) -> None:
    seed(ctl)
    res = ctl("get", "k1", "--rev=100")
    assert res.returncode == 1
    assert res.error == "etcdserver: mvcc: required revision is a future revision"
    assert "code = OutOfRange" in res.stderr
    ctl.ok("compaction", "4")
    res = ctl("get", "k1", "--rev=3")
    assert res.returncode == 1
    assert res.error == "etcdserver: mvcc: required revision has been compacted"
    assert ctl.ok("get", "k1", "--rev=4").stdout == "k1\nv1\n"


def test_bad_input_request_too_large(ctl) -> None:
    value = "x" * (1600 * 1024)  # above the 1.5 MiB server limit, below the client's 2 MiB
    res = ctl("put", "big", stdin=value)
    assert res.returncode == 1
    assert res.error == "etcdserver: request is too large"
    assert ctl.ok("get", "big").stdout == ""


def test_bad_input_client_side_errors(ctl) -> None:
    res = ctl("get", "a", "--sort-by=BOGUS")
    assert res.returncode != 0
    assert res.error == "bad sort target BOGUS"
    res = ctl("put", "a", "x", "--ignore-value")
    assert res.returncode != 0
    assert res.error == "put command needs only 1 argument when 'ignore-value' is set"


def test_bad_input_put_unknown_lease(ctl) -> None:
    res = ctl("put", "a", "x", "--lease=1234")
    assert res.returncode == 1
    assert res.error == "etcdserver: requested lease not found"
    assert "code = NotFound" in res.stderr
