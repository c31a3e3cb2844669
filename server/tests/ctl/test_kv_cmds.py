"""get / put / del / txn / compaction: kvetchctl prints exactly what etcdctl 3.5.1 prints."""

from __future__ import annotations

import pytest

FORMATS = ["simple", "json", "fields"]


def test_put_get_del(pair) -> None:  # type: ignore[no-untyped-def]
    for k, v in [("a", "1"), ("b/1", "x y"), ("b/2", 'quote"d'), ("b/3", "ünï"), ("c", "")]:
        pair.same("put", k, v)
    pair.same("put", "a", "2", "--prev-kv")
    for w in FORMATS:
        pair.same("put", "a", f"v-{w}", "--prev-kv", "-w", w)
        pair.same("get", "a", "-w", w)
        pair.same("get", "b/", "--prefix", "-w", w)
        pair.same("get", "", "--prefix", "--keys-only", "-w", w)
        pair.same("get", "nope", "-w", w)
    pair.same("get", "a", "c")
    pair.same("get", "b/2", "--from-key")
    pair.same("get", "", "--prefix", "--limit", "2", "-w", "json")
    pair.same("get", "b/", "--prefix", "--sort-by", "VALUE", "--order", "DESCEND")
    pair.same("get", "b/", "--prefix", "--sort-by", "MODIFY")
    pair.same("get", "b/", "--prefix", "--order", "DESCEND", "--print-value-only")
    pair.same("get", "a", "--rev", "2", "-w", "json")
    pair.same("get", "a", "--consistency", "s")
    pair.same("get", "b/", "--prefix", "--count-only", "-w", "fields")
    pair.same("--hex", "get", "b/", "--prefix")
    pair.same("put", "c", "--ignore-value", "-w", "json")
    pair.same("del", "b/1", "--prev-kv")
    pair.same("del", "b/", "--prefix", "--prev-kv", "-w", "json")
    pair.same("del", "nope", "-w", "fields")
    pair.same("del", "a", "--from-key")
    pair.same("put", "from-stdin", stdin="line one\nline two\n")
    pair.same("get", "from-stdin", "-w", "json")
    pair.same("put", "from-stdin", stdin="")


@pytest.mark.parametrize(
    "args",
    [
        ("get",),
        ("get", "a", "--prefix", "--from-key"),
        ("get", "a", "--count-only"),
        ("get", "a", "--print-value-only", "-w", "json"),
        ("get", "a", "--order", "SIDEWAYS"),
        ("get", "a", "--sort-by", "COLOUR"),
        ("get", "a", "-w", "table"),
        ("put",),
        ("put", "k", "--ignore-value", "v"),
        ("put", "k", "v", "--lease", "zz"),
        ("put", "k", "v", "--lease", "1234"),
        ("put", "k", "--ignore-value"),
        ("del",),
        ("compaction",),
        ("compaction", "100"),
        ("get", "a", "--rev", "100"),
    ],
)
def test_errors_match(pair, args) -> None:  # type: ignore[no-untyped-def]
    pair.same(*args)


TXN_INPUT = 'value("a") = "1"\nmod("b") > "0"\n\nput c "3 3"\nget a --prefix\ndel b\n\nget zz\n\n'


def test_txn(pair) -> None:  # type: ignore[no-untyped-def]
    pair.same("put", "a", "1")
    pair.same("put", "b", "2")
    for w in FORMATS:
        pair.same("txn", "-w", w, stdin=TXN_INPUT)
        pair.same("put", "b", "2")
    pair.same("txn", stdin='version("a") = "99"\n\nput x 1\n\nput y 2\nget y\n\n')
    pair.same("txn", "-i", stdin='create("a") != "0"\n\ndel a --prev-kv\n\n\n')
    pair.same("txn", stdin='value("a") = "1"\n\n')  # EOF before the failure block
    pair.same("txn", stdin="bogus\n\n\n\n")
    pair.same("txn", stdin='value("a") = "1"\n\nfrobnicate k\n\n\n')
    pair.same("txn", stdin='value("a") = "1"\n\nput k\n\n\n')


def test_compaction(pair) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        pair.same("put", "k", str(i))
    pair.same("compaction", "3")
    pair.same("get", "k", "--rev", "2")
    pair.same("compaction", "2")
    pair.same("compaction", "5", "--physical")
    pair.same("get", "k", "--rev", "5", "-w", "json")


def test_user_password_flags(pair) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from kvetch.client import Client

    async def enable(ep: str) -> None:
        async with Client([ep], timeout=5) as c:
            await c.auth.role_add("root")
            await c.auth.user_add("root", "secret")
            await c.auth.user_grant_role("root", "root")
            await c.put("k", "v")
            await c.auth.enable()

    asyncio.run(enable(pair.a.endpoint))
    asyncio.run(enable(pair.b.endpoint))
    pair.same("--user", "root:secret", "get", "k")
    pair.same("--user", "root", "--password", "secret", "put", "k", "v2", "-w", "json")
    pair.same("--user", "root:secret", "get", "k", "-w", "json")
    pair.same("--user", "root:wrong", "get", "k")
    pair.same("get", "k")
