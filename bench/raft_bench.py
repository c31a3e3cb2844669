"""Micro-benchmark of kvetch.raft: a 3-node in-memory cluster (MemoryStorage,
messages handed over directly), committed entries per second for proposal
batches of 1, 16 and 256. Not a test; run ``python bench/raft_bench.py``.

Each round proposes one batch on the leader (``propose`` once per entry) and
drives Ready/Advance on all nodes until the batch is applied on the leader.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server" / "src"))

from kvetch.raft import Config, MemoryStorage, RawNode
from kvetch.raft.codec import decode_conf_change
from kvetch.raft.types import ENTRY_CONF_CHANGE


class Bench:
    def __init__(self, n: int = 3) -> None:
        ids = list(range(1, n + 1))
        self.storages = {i: MemoryStorage() for i in ids}
        self.nodes: dict[int, RawNode] = {}
        for i in ids:
            self.storages[i].bootstrap(ids)
            self.nodes[i] = RawNode(Config(id=i, storage=self.storages[i], rng=random.Random(i),
                                           max_inflight_msgs=256, max_size_per_msg=1 << 20))
        self.applied = 0
        self.pump()
        self.nodes[1].campaign()
        self.pump()
        assert self.nodes[1].is_leader

    def pump(self) -> None:
        nodes = self.nodes
        storages = self.storages
        moved = True
        while moved:
            moved = False
            for i, rn in nodes.items():
                if not rn.has_ready():
                    continue
                moved = True
                rd = rn.ready()
                st = storages[i]
                if rd.entries:
                    st.append(rd.entries)
                if rd.hard_state is not None:
                    st.set_hard_state(rd.hard_state)
                for m in rd.messages:
                    nodes[m.to].step(m)
                for e in rd.committed_entries:  # the "apply loop"
                    if e.type == ENTRY_CONF_CHANGE:
                        rn.apply_conf_change(decode_conf_change(e.data))
                if i == 1:
                    self.applied += len(rd.committed_entries)
                rn.advance(rd)

    def compact(self) -> None:
        for i, st in self.storages.items():
            applied = self.nodes[i].applied_index
            if applied - st.first_index() > 50_000:
                st.compact(applied - 1000)


def run(batch: int, seconds: float, payload: bytes) -> tuple[float, float]:
    """Committed entries per wall-clock second and per CPU second of this process
    (the second is steadier on a shared machine)."""
    b = Bench()
    leader = b.nodes[1]
    start_applied = b.applied
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    rounds = 0
    while True:
        for _ in range(batch):
            leader.propose(payload)
        b.pump()
        rounds += 1
        if rounds % 64 == 0:
            b.compact()
            if time.perf_counter() >= deadline:
                break
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    done = b.applied - start_applied
    return done / elapsed, done / max(cpu, 1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--batches", default="1,16,256")
    ap.add_argument("--payload", type=int, default=64, help="bytes per entry")
    opts = ap.parse_args()
    payload = b"x" * opts.payload
    for batch in (int(x) for x in opts.batches.split(",")):
        wall, cpu = run(batch, opts.seconds, payload)
        print(f"batch {batch:4d}: {wall:10,.0f} committed entries/s wall, "
              f"{cpu:10,.0f} per CPU-second (3 nodes, in memory, {opts.payload} B entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
