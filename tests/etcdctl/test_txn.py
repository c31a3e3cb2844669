"""etcdctl txn, fed its interactive format on stdin.

The format: compares one per line, a blank line, success ops one per line, a
blank line, failure ops one per line, a blank line. etcdctl 3.5 prints the
JSON oneof names in snake case (``response_put``), 3.4 in Go CamelCase
(``ResponsePut``): the tests accept each version's own spelling.
"""

from __future__ import annotations

import base64


def _response_key(version: str, kind: str) -> str:
    snake = {"put": "response_put", "range": "response_range", "delete": "response_delete_range"}
    camel = {"put": "ResponsePut", "range": "ResponseRange", "delete": "ResponseDeleteRange"}
    return (snake if version == "3.5" else camel)[kind]


def test_txn_success_branch(ctl) -> None:
    ctl.ok("put", "t1", "a")
    stdin = 'value("t1") = "a"\nmod("t1") > "0"\n\nput t2 yes\nget t1\n\nput t2 no\n\n'
    assert ctl.ok("txn", stdin=stdin).stdout == "SUCCESS\n\nOK\n\nt1\na\n"
    assert ctl.ok("get", "t2").stdout == "t2\nyes\n"


def test_txn_failure_branch_json(ctl) -> None:
    ctl.ok("put", "t1", "a")
    stdin = 'value("t1") = "zzz"\n\nput t2 yes\n\ndel t1\nget t1\n\n'
    out = ctl.ok("txn", "-w", "json", stdin=stdin).json()
    assert "succeeded" not in out  # false is omitted
    assert out["header"]["revision"] == 3
    responses = [r["Response"] for r in out["responses"]]
    assert responses[0] == {_response_key(ctl.version, "delete"): {"header": {"revision": 3}, "deleted": 1}}
    assert responses[1] == {_response_key(ctl.version, "range"): {"header": {"revision": 3}}}
    assert ctl.ok("get", "t2").stdout == ""


def test_txn_compare_kinds(ctl) -> None:
    ctl.ok("put", "c", "5")  # rev 2
    ctl.ok("put", "c", "6")  # rev 3, version 2
    cases = [
        ('version("c") = "2"', "SUCCESS"),
        ('version("c") > "2"', "FAILURE"),
        ('create("c") = "2"', "SUCCESS"),
        ('mod("c") < "3"', "FAILURE"),
        ('mod("c") = "3"', "SUCCESS"),
        ('value("c") != "5"', "SUCCESS"),
        ('value("c") < "6"', "FAILURE"),
        ('version("missing") = "0"', "SUCCESS"),
        ('create("missing") = "0"', "SUCCESS"),
    ]
    for compare, expected in cases:
        out = ctl.ok("txn", stdin=f"{compare}\n\n\n\n").stdout
        assert out.splitlines()[0] == expected, compare


def test_txn_compare_syntax_limits(ctl) -> None:
    """etcdctl's txn parser takes one key per compare (no range_end) and its
    ``lease(...)`` compare panics in both 3.4.23 and 3.5.1 (the key is dropped
    and the string value is passed where an int is needed). Range and lease
    compares are covered over gRPC by the differential tests instead."""
    res = ctl("txn", stdin='value("r1", "r3") = "a"\n\n\n\n')
    assert res.returncode == 3
    assert res.error.startswith('malformed comparison: value("r1", "r3") = "a"')
    res = ctl("txn", stdin='lease("l") = "0"\n\n\n\n')
    assert res.returncode == 2
    assert "panic: bad value" in res.stderr


def test_txn_ops_with_flags(ctl) -> None:
    ctl.ok("put", "p1", "a")
    ctl.ok("put", "p2", "b")
    stdin = '\nput p1 z --prev-kv\nget p --prefix --keys-only\ndel p2\n\n\n'
    out = ctl.ok("txn", "-w", "json", stdin=stdin).json()
    assert out["succeeded"] is True
    put_resp = out["responses"][0]["Response"][_response_key(ctl.version, "put")]
    assert put_resp["prev_kv"]["value"] == base64.b64encode(b"a").decode()
    rng = out["responses"][1]["Response"][_response_key(ctl.version, "range")]
    assert [kv["key"] for kv in rng["kvs"]] == [base64.b64encode(k).decode() for k in (b"p1", b"p2")]
    assert all("value" not in kv for kv in rng["kvs"])
    assert rng["count"] == 2
    assert out["responses"][2]["Response"][_response_key(ctl.version, "delete")]["deleted"] == 1
    # one txn, one revision
    assert out["header"]["revision"] == 4


def test_txn_bad_input(ctl) -> None:
    res = ctl("txn", stdin="bogus\n\n\n\n")
    assert res.returncode == 3
    assert res.error == "malformed comparison: bogus"
    too_many = "\n" + "".join(f"put k{i} v\n" for i in range(129)) + "\n\n"
    res = ctl("txn", stdin=too_many)
    assert res.returncode == 1
    assert res.error == "etcdserver: too many operations in txn request"
    res = ctl("txn", stdin="\nput a 1\nput a 2\n\n\n")
    assert res.returncode == 1
    assert res.error == "etcdserver: duplicate key given in txn request"
    assert "code = InvalidArgument" in res.stderr
    # a put and a delete of the same key in one txn is also a duplicate
    res = ctl("txn", stdin="\nput p 1\ndel p --prefix\n\n\n")
    assert res.returncode == 1
    assert res.error == "etcdserver: duplicate key given in txn request"
    # 128 is allowed
    limit = "\n" + "".join(f"put k{i} v\n" for i in range(128)) + "\n\n"
    assert ctl.ok("txn", stdin=limit).lines[0] == "SUCCESS"
    assert ctl.ok("get", "k", "--prefix", "-w", "json").json()["count"] == 128
    assert ctl.ok("get", "p", "-w", "json").json()["header"]["revision"] == 2
