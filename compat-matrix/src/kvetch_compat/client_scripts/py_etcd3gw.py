"""Fixed client script for etcd3gw (the JSON gateway client): one JSON line per operation."""

import json
import sys
import threading
import uuid

from etcd3gw.client import Etcd3Client

url = sys.argv[1]
host, port = url.split("//")[-1].split(":")
p = f"/clients/py-etcd3gw/{uuid.uuid4().hex[:6]}/"


def rec(op, ok, detail="", verify=None):
    print(json.dumps({"op": op, "ok": bool(ok), "detail": str(detail)[:300], "verify": verify}), flush=True)


def attempt(op, fn):
    try:
        fn()
    except Exception as exc:
        rec(op, False, f"{type(exc).__name__}: {exc}")


c = Etcd3Client(host=host, port=int(port), timeout=5)


def put():
    rec("put", c.put(p + "a", "1"), "ok", [p + "a", "1"])


def get():
    v = c.get(p + "a")
    rec("get", v == [b"1"] or v == ["1"], repr(v))


def get_prefix():
    c.put(p + "b", "2")
    keys = sorted(m["key"].decode() if isinstance(m["key"], bytes) else m["key"] for _, m in c.get_prefix(p))
    rec("get-prefix", keys == [p + "a", p + "b"], keys)


def delete():
    rec("delete", c.delete(p + "b") is True, "deleted", [p + "b", None])


def txn():
    import base64

    def b(s):
        return base64.b64encode(s.encode()).decode()

    r = c.transaction({
        "compare": [{"key": b(p + "a"), "result": "EQUAL", "target": "VALUE", "value": b("1")}],
        "success": [{"request_put": {"key": b(p + "t"), "value": b("yes")}}],
        "failure": [{"request_put": {"key": b(p + "t"), "value": b("no")}}],
    })
    rec("txn", r.get("succeeded") is True, r.get("succeeded"), [p + "t", "yes"])


def lease():
    le = c.lease(ttl=60)
    c.put(p + "l", "x", lease=le)
    le.revoke()
    rec("lease", True, f"lease {le.id}", [p + "l", None])


def watch():
    events, cancel = c.watch(p + "w")
    got = []

    def reader():
        for ev in events:
            got.append(ev)
            break

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    import time

    time.sleep(0.5)
    c.put(p + "w", "seen")
    t.join(5)
    cancel()
    rec("watch", any("seen" in str(e) for e in got), repr(got)[:200])


def members():
    ms = c.members()
    rec("member-list", len(ms) >= 1, ms)


def status():
    st = c.status()
    rec("status", bool(st.get("version")), st.get("version"))


for name, fn in [("put", put), ("get", get), ("get-prefix", get_prefix), ("delete", delete), ("txn", txn),
                 ("lease", lease), ("watch", watch), ("member-list", members), ("status", status)]:
    attempt(name, fn)
