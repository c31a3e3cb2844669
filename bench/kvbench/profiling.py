"""py-spy profiles of the server during a workload: raw collapsed stacks on
disk (feed them to any flame-graph tool) and the top functions by self time."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass
class Handle:
    proc: subprocess.Popen[bytes]
    raw: Path
    workload: str


class Profiler:
    """Attach ``py-spy record`` to a pid for the measured window of chosen workloads."""

    def __init__(self, outdir: Path, workloads: set[str], rate: int = 100, top: int = 25,
                 gil_only: bool = True, native: bool = False) -> None:
        #: --gil: only the thread holding the GIL is sampled, i.e. Python CPU time, not waits.
        #: --native (C frames) cannot sample without pausing the process; otherwise do not pause.
        self.flags = (["--gil"] if gil_only else []) + (["--native"] if native else ["--nonblocking"])
        self.outdir = outdir
        self.workloads = workloads
        self.rate = rate
        self.top = top
        self.exe = shutil.which("py-spy")

    def wants(self, workload: str, server: str) -> bool:
        return self.exe is not None and server == "kvetch" and workload in self.workloads

    def start(self, pid: int, workload: str) -> Handle:
        assert self.exe
        self.outdir.mkdir(parents=True, exist_ok=True)
        raw = self.outdir / f"{workload}.collapsed.txt"
        proc = subprocess.Popen([self.exe, "record", "--pid", str(pid), "--rate", str(self.rate),
                                 "--format", "raw", "--output", str(raw), *self.flags],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return Handle(proc, raw, workload)

    def finish(self, h: Handle) -> dict[str, Any]:
        h.proc.send_signal(signal.SIGINT)
        try:
            _, err = h.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            h.proc.kill()
            _, err = h.proc.communicate()
        if not h.raw.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        return summarize(h.raw, self.top)


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    f = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in f:
            f = f.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({f})"


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    """Self and total sample counts per function from py-spy's raw (collapsed) output."""
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        if parts and parts[0].startswith(("thread ", "process ")):
            parts = parts[1:]
        frames = [_short(f) for f in parts]
        if not frames:
            continue
        samples += n
        self_c[frames[-1]] += n
        for f in set(frames):
            total_c[f] += n
    return {
        "raw": str(raw),
        "samples": samples,
        "self": [(f, n, 100.0 * n / max(samples, 1)) for f, n in self_c.most_common(top)],
        "total": [(f, n, 100.0 * n / max(samples, 1)) for f, n in total_c.most_common(top)],
    }
