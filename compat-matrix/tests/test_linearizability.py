"""The WGL checker on hand-made histories: linearizable ones pass, non-linearizable ones are caught."""

from __future__ import annotations

import random

from kvetch_compat.history import Op
from kvetch_compat.linearizability import check, check_partition, check_revisions

_ids = iter(range(10**6))


def op(kind: str, call: float, ret: float | None, key: str = "k", **kw: object) -> Op:
    outcome = kw.pop("outcome", "ok" if ret is not None else "unknown")
    return Op(next(_ids), str(kw.pop("client", "c")), kind, key, call=call, ret=ret, outcome=str(outcome), **kw)  # type: ignore[arg-type]


def test_sequential_register_is_linearizable() -> None:
    h = [op("put", 0, 1, value="a", revision=2), op("get", 2, 3, out_value="a", out_mod_rev=2, revision=2),
         op("delete", 4, 5, deleted=1, revision=3), op("get", 6, 7, out_value=None, revision=3)]
    assert check(h).ok


def test_stale_read_after_acknowledged_write_is_caught() -> None:
    h = [op("put", 0, 1, value="a", revision=2), op("put", 2, 3, value="b", revision=3),
         op("get", 4, 5, out_value="a", out_mod_rev=2, revision=3)]
    res = check(h)
    assert not res.ok
    bad = [p for p in res.partitions if not p.ok]
    assert bad and bad[0].culprit is not None and bad[0].culprit.kind == "get"


def test_concurrent_writes_either_order_is_fine() -> None:
    h = [op("put", 0, 5, value="a", revision=3, client="c1"), op("put", 1, 4, value="b", revision=2, client="c2"),
         op("get", 6, 7, out_value="a", out_mod_rev=3, revision=3)]
    assert check(h).ok


def test_read_of_value_never_written_is_caught() -> None:
    h = [op("put", 0, 1, value="a", revision=2), op("get", 2, 3, out_value="zzz", out_mod_rev=2, revision=2)]
    assert not check(h).ok


def test_unknown_write_may_apply_or_not() -> None:
    applied = [op("put", 0, None, value="x"), op("get", 5, 6, out_value="x", out_mod_rev=2, revision=2)]
    not_applied = [op("put", 0, None, value="x"), op("get", 5, 6, out_value=None, revision=1)]
    assert check(applied).ok
    assert check(not_applied).ok


def test_unknown_write_cannot_take_effect_before_it_was_invoked() -> None:
    h = [op("get", 0, 1, out_value="x", out_mod_rev=2, revision=2), op("put", 2, None, value="x")]
    assert not check(h).ok


def test_value_flapping_back_is_caught() -> None:
    # a then b acknowledged, a reader sees b then a again: not linearizable
    h = [op("put", 0, 1, value="a", revision=2), op("put", 2, 3, value="b", revision=3),
         op("get", 4, 5, out_value="b", out_mod_rev=3, revision=3),
         op("get", 6, 7, out_value="a", out_mod_rev=2, revision=3)]
    assert not check(h).ok


def test_cas_semantics() -> None:
    good = [op("put", 0, 1, value="a", revision=2),
            op("cas", 2, 3, expected="a", value="b", succeeded=True, revision=3),
            op("cas", 4, 5, expected="a", value="c", succeeded=False, out_value="b", revision=3)]
    assert check(good).ok
    # two CAS from the same expected value cannot both succeed
    bad = [op("put", 0, 1, value="a", revision=2),
           op("cas", 2, 5, expected="a", value="b", succeeded=True, revision=3, client="c1"),
           op("cas", 2, 5, expected="a", value="c", succeeded=True, revision=4, client="c2")]
    assert not check(bad).ok


def test_delete_count_must_match_state() -> None:
    h = [op("delete", 0, 1, deleted=1, revision=2)]  # nothing to delete yet
    assert not check(h).ok


def test_revisions_must_follow_real_time_across_keys() -> None:
    h = [op("put", 0, 1, key="a", value="1", revision=5), op("put", 2, 3, key="b", value="1", revision=4)]
    assert check_revisions(h)
    assert not check(h).ok
    dup = [op("put", 0, 1, key="a", value="1", revision=5), op("put", 0, 1, key="b", value="1", revision=5)]
    assert any("two writes" in e for e in check_revisions(dup))


def test_large_concurrent_history_is_fast_and_linearizable() -> None:
    """A simulated linearizable register with 4 clients and ~3000 ops checks quickly."""
    rng = random.Random(7)
    ops: list[Op] = []
    t = 0.0
    value: dict[str, tuple[str | None, int]] = {}
    rev = 1
    pending: list[tuple[float, Op]] = []
    for i in range(3000):
        key = f"k{rng.randrange(5)}"
        t += rng.random()
        call = t
        lin = call + rng.random() * 0.5  # linearization point
        ret = lin + rng.random() * 2.0
        cur = value.get(key, (None, 0))
        if rng.random() < 0.5:
            rev += 1
            o = op("put", call, ret, key=key, value=f"v{i}", revision=rev, client=f"c{i % 4}")
            value[key] = (f"v{i}", rev)
        else:
            o = op("get", call, ret, key=key, out_value=cur[0], out_mod_rev=cur[1], revision=rev,
                   client=f"c{i % 4}")
        pending.append((lin, o))
        t = lin
    ops = [o for _, o in pending]
    res = check(ops)
    assert all(p.ok for p in res.partitions), res.summary()
    assert not any(p.timed_out for p in res.partitions)


def test_partition_reports_context_on_failure() -> None:
    h = [op("put", 0, 1, value="a", revision=2), op("get", 2, 3, out_value=None, revision=2)]
    r = check_partition("k", h)
    assert not r.ok and r.culprit is not None and r.context
