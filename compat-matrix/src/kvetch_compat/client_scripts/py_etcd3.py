"""Fixed client script for the python-etcd3 client: one JSON line per operation (run as a subprocess)."""

import json
import sys
import threading
import uuid

import etcd3

url = sys.argv[1]
host, port = url.split("//")[-1].split(":")
p = f"/clients/py-etcd3/{uuid.uuid4().hex[:6]}/"


def rec(op, ok, detail="", verify=None):
    print(json.dumps({"op": op, "ok": bool(ok), "detail": str(detail)[:300], "verify": verify}), flush=True)


def attempt(op, fn):
    try:
        fn()
    except Exception as exc:
        rec(op, False, f"{type(exc).__name__}: {exc}")


c = etcd3.client(host=host, port=int(port), timeout=5)


def put():
    c.put(p + "a", "1")
    rec("put", True, "ok", [p + "a", "1"])


def get():
    v, _meta = c.get(p + "a")
    rec("get", v == b"1", repr(v))


def get_prefix():
    c.put(p + "b", "2")
    keys = sorted(m.key.decode() for _, m in c.get_prefix(p))
    rec("get-prefix", keys == [p + "a", p + "b"], keys)


def delete():
    rec("delete", c.delete(p + "b") is True, "deleted", [p + "b", None])


def txn():
    ok, _ = c.transaction(compare=[c.transactions.value(p + "a") == "1"],
                          success=[c.transactions.put(p + "t", "yes")], failure=[c.transactions.put(p + "t", "no")])
    rec("txn", ok, f"succeeded={ok}", [p + "t", "yes"])


def lease():
    le = c.lease(60)
    c.put(p + "l", "x", lease=le)
    le.revoke()
    rec("lease", True, f"lease {le.id}", [p + "l", None])


def watch():
    got = []
    done = threading.Event()

    def cb(resp):
        for ev in getattr(resp, "events", []):
            got.append(ev.value)
            done.set()

    wid = c.add_watch_callback(p + "w", cb)
    c.put(p + "w", "seen")
    done.wait(5)
    c.cancel_watch(wid)
    rec("watch", b"seen" in got, repr(got))


def members():
    ms = list(c.members)
    rec("member-list", len(ms) >= 1, [m.name for m in ms])


def status():
    st = c.status()
    rec("status", bool(st.version), f"version {st.version}")


for name, fn in [("put", put), ("get", get), ("get-prefix", get_prefix), ("delete", delete), ("txn", txn),
                 ("lease", lease), ("watch", watch), ("member-list", members), ("status", status)]:
    attempt(name, fn)
