"""Storage micro-benchmark (not a test): `python server/tests/storage/bench_storage.py [N]`.

Prints put throughput with one backend transaction per put and with batches
of revisions per transaction (as the apply loop does), read and maintenance
costs, and WAL group-commit throughput. Numbers depend on machine load.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from kvetch.storage.backend import Backend
from kvetch.storage.mvcc import KVStore
from kvetch.storage.wal import WAL, Entry


def main(n: int = 10_000) -> None:
    val = b"x" * 256
    with tempfile.TemporaryDirectory() as tmp:

        def fresh(name: str) -> KVStore:
            return KVStore(Backend.open_data_dir(os.path.join(tmp, name)))

        s = fresh("own")
        t = time.perf_counter()
        for i in range(n):
            s.put(b"key-%08d" % (i % 1000), val)
        print(f"put, one backend txn per put:    {n / (time.perf_counter() - t):10.0f} ops/s")
        s.backend.close()

        for batch in (16, 128, 512):
            s = fresh(f"b{batch}")
            t = time.perf_counter()
            i = 0
            while i < n:
                with s.backend.write() as wtx:
                    for _ in range(batch):
                        w = s.write(wtx)
                        w.put(b"key-%08d" % (i % 1000), val, 0)
                        w.end()
                        i += 1
            print(f"put, {batch:3d} revisions per txn:     {n / (time.perf_counter() - t):10.0f} ops/s")
            s.backend.close()

        s = fresh("reads")
        with s.backend.write() as wtx:
            for i in range(100_000):
                w = s.write(wtx)
                w.put(b"key-%08d" % i, val, 0)
                w.end()
        t = time.perf_counter()
        for i in range(n):
            with s.read() as r:
                r.range(b"key-%08d" % i)
        print(f"range one key (reader per call): {n / (time.perf_counter() - t):10.0f} ops/s")
        t = time.perf_counter()
        for _ in range(50):
            s.range(b"key-00000000", b"key-00001000")
        print(f"range of 1000 keys:              {50_000 / (time.perf_counter() - t):10.0f} keys/s")
        t = time.perf_counter()
        s.range(b"key-", b"key.", count_only=True)
        print(f"count 100k keys:                 {(time.perf_counter() - t) * 1000:10.1f} ms")
        t = time.perf_counter()
        s.hash_kv(0)
        print(f"hash_kv over 100k revisions:     {(time.perf_counter() - t) * 1000:10.1f} ms")
        t = time.perf_counter()
        s.compact(s.rev)
        print(f"compact 100k revisions:          {(time.perf_counter() - t) * 1000:10.1f} ms")
        s.backend.close()

        w = WAL.open(os.path.join(tmp, "wal"))
        data = os.urandom(300)
        t = time.perf_counter()
        for i in range(0, n, 128):
            w.append([Entry(j + 1, 1, data) for j in range(i, min(n, i + 128))])
            w.sync()
        print(f"WAL, 128 entries per fsync:      {n / (time.perf_counter() - t):10.0f} entries/s")
        t = time.perf_counter()
        for i in range(1000):
            w.append([Entry(n + i + 1, 1, data)])
            w.sync()
        print(f"WAL, 1 entry per fsync:          {1000 / (time.perf_counter() - t):10.0f} entries/s")
        w.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
