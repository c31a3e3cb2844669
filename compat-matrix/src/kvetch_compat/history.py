"""Client history records: one Op per request, with invoke/return times, outcome and revision.

Outcome is `ok` (acknowledged), `fail` (definitely not applied: the server
rejected it before proposing) or `unknown` (timed out or connection lost: it
may or may not have been applied).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Op:
    id: int
    client: str
    kind: str  # put | get | delete | cas | lease-put | lease-revoke
    key: str
    value: str | None = None  # written value (put, cas, lease-put)
    expected: str | None = None  # cas compare value (None: key absent)
    call: float = 0.0
    ret: float | None = None
    outcome: str = "unknown"  # ok | fail | unknown
    revision: int = 0  # header revision of the reply
    out_value: str | None = None  # get result / cas failure-branch result
    out_mod_rev: int = 0
    succeeded: bool | None = None  # cas
    deleted: int | None = None
    lease: int = 0
    endpoint: str = ""
    error: str = ""

    def is_write(self) -> bool:
        return self.kind != "get"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def short(self) -> str:
        t = "?" if self.ret is None else f"{self.ret:.3f}"
        res = ""
        if self.kind == "get":
            res = f" -> {self.out_value!r}@{self.out_mod_rev}"
        elif self.kind == "cas":
            res = f" -> {'succeeded' if self.succeeded else 'failed'}"
        elif self.kind == "delete":
            res = f" -> deleted={self.deleted}"
        args = f"{self.key}" + (f"={self.value!r}" if self.value is not None else "")
        if self.kind == "cas":
            args = f"{self.key}: {self.expected!r}=>{self.value!r}"
        err = f" [{self.error}]" if self.error else ""
        return (f"#{self.id} {self.client} {self.kind}({args}){res} rev={self.revision} {self.outcome} "
                f"[{self.call:.3f}, {t}] via {self.endpoint}{err}")


class History:
    """Thread-safe append-only list of ops; time is seconds since the history started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ops: list[Op] = []
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def invoke(self, client: str, kind: str, key: str, **fields: Any) -> Op:
        with self._lock:
            op = Op(len(self.ops), client, kind, key, call=self.now(), **fields)
            self.ops.append(op)
            return op

    def complete(self, op: Op, outcome: str, **fields: Any) -> None:
        for k, v in fields.items():
            setattr(op, k, v)
        op.outcome = outcome
        op.ret = self.now() if outcome != "unknown" else None

    def snapshot(self) -> list[Op]:
        with self._lock:
            return list(self.ops)
