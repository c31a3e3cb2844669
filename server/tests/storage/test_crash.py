"""Process crashes (SIGKILL) in the middle of writing: everything reported done survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from kvetch.storage import open_storage

CHILD = textwrap.dedent(
    """
    import sys
    from kvetch.storage import open_storage
    st = open_storage(sys.argv[1], wal_segment_size=256 * 1024)
    i = st.consistent_index()[0]
    while True:
        i += 1
        # WAL first (durable), then apply into the backend with the consistent index
        st.wal.append([(i, 1, b"entry-%d" % i + b"." * (i % 700))])
        st.wal.sync()
        with st.write() as tx:
            w = tx.kv_writer()
            w.put(b"k%d" % (i % 50), b"v%d" % i, 0)
            w.end()
            tx.set_consistent_index(i, 1)
        if i % 100 == 0:
            st.backend.sync()
            st.wal.release_to(i)
        print(i, flush=True)
    """
)


def _run_and_kill(data_dir: str, at_least: int) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, data_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    last = 0
    deadline = time.monotonic() + 60
    while last < at_least and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    for line in rest.split():
        last = int(line)
    assert last >= at_least, proc.stderr.read().decode() if proc.stderr else ""
    return last


def test_sigkill_loses_nothing_reported(tmp_path):
    d = str(tmp_path / "data")
    done = 0
    for round_ in range(3):
        done = _run_and_kill(d, done + 300 + 37 * round_)
        st = open_storage(d, wal_segment_size=256 * 1024)
        index, term = st.consistent_index()
        assert index >= done and term == 1
        c = st.wal.read_all()
        assert c.entries, "WAL must still hold the unreleased tail"
        assert c.entries[-1].index >= done
        idx = [e.index for e in c.entries]
        assert idx == list(range(idx[0], idx[-1] + 1))
        assert all(e.data.startswith(b"entry-%d" % e.index) for e in c.entries)
        assert st.kv.rev == index + 1  # one revision per applied entry
        assert st.kv.range(b"k%d" % (index % 50)).kvs[0].value == b"v%d" % index
        st.kv.hash_kv(0)
        st.close()
