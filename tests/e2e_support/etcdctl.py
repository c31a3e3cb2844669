"""Run the real etcdctl (3.5.1 or 3.4.23) against a server.

``run_etcdctl("3.5", "get", "foo", server=srv)`` returns a
:class:`CtlResult` with stdout, stderr and the exit code; ``check=True``
raises with everything printed if the exit code is not 0. ``background``
starts a long-running command (watch, lock, elect) whose output is read line
by line with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from e2e_support.binaries import etcdctl_binary

VERSIONS = ("3.5", "3.4")


@dataclass
class CtlResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def error(self) -> str:
        """The ``Error: ...`` line etcdctl printed on stderr (without the prefix), or ""."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith("Error: "):
                return line[len("Error: "):]
        return ""

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\n[rc={self.returncode}]\n{self.stdout}\n[stderr]\n{self.stderr}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ETCDCTL_API"] = "3"
    for var in ("ETCDCTL_ENDPOINTS", "ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY"):
        env.pop(var, None)
    return env


def etcdctl_argv(version: str, args: tuple[str, ...] | list[str], endpoint: str) -> list[str]:
    return [etcdctl_binary(version), f"--endpoints={endpoint}", "--dial-timeout=5s",
            "--command-timeout=10s", *args]


def run_etcdctl(
    version: str,
    *args: str,
    server: Any,
    stdin: str | None = None,
    check: bool = False,
    timeout: float = 30.0,
) -> CtlResult:
    argv = etcdctl_argv(version, args, server.endpoint)
    proc = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=_env(), timeout=timeout, check=False,
    )
    result = CtlResult(argv, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"etcdctl failed:\n{result}")
    return result


class Background:
    """A running etcdctl whose stdout is collected line by line by a thread."""

    def __init__(self, argv: list[str], stdin: str | None = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_env(), start_new_session=True,
        )
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.flush()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def read_lines(self, count: int, timeout: float = 10.0) -> list[str]:
        """The next ``count`` lines of output; fails at the deadline."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(
                    f"got {len(out)} of {count} lines from {self.argv} in {timeout}s: {out!r}; "
                    f"stderr: {self.stderr_now()}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"{self.argv} exited ({self.proc.poll()}) after {out!r}; stderr: {self.stderr_now()}"
                )
            out.append(line)
            self.seen.append(line)
        return out

    def read_until(self, predicate: Any, timeout: float = 10.0) -> list[str]:
        """Read lines until one satisfies ``predicate``; return all read."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line from {self.argv} in {timeout}s: {out!r}")
            out.extend(self.read_lines(1, timeout=remaining))
            if predicate(out[-1]):
                return out

    def stderr_now(self) -> str:
        if self.proc.poll() is None:
            return "<still running>"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def background_etcdctl(version: str, *args: str, server: Any, stdin: str | None = None) -> Background:
    return Background(etcdctl_argv(version, args, server.endpoint), stdin=stdin)
