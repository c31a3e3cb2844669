"""Protobuf messages rendered the way Go's encoding/json renders etcd's gogo-generated structs.

That is what ``etcdctl -w json`` prints: proto field names as keys, in
declaration order, zero values omitted (``omitempty``), bytes as standard
base64, 64-bit integers as bare numbers, enums as numbers, and a oneof as a
Go interface field (``"Response":{"response_put":{...}}``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

#: fields newer than etcd 3.5.1's Go structs (etcdctl 3.5.1 never prints them)
SKIP = {
    "etcdserverpb.StatusResponse.storageVersion",
    "etcdserverpb.StatusResponse.dbSizeQuota",
    "etcdserverpb.StatusResponse.downgradeInfo",
    "etcdserverpb.HashKVResponse.hash_revision",
}


def _go_name(oneof: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in oneof.split("_"))


def _scalar(fd: FieldDescriptor, v: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(v).decode()
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return to_obj(v)
    return v


def _is_zero(fd: FieldDescriptor, v: Any) -> bool:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return False
    return not v


def to_obj(msg: Message) -> dict[str, Any]:
    """An ordered dict with Go's field set and order for ``msg``."""
    out: dict[str, Any] = {}
    desc = msg.DESCRIPTOR
    seen_oneofs: set[str] = set()
    for fd in desc.fields:
        if fd.full_name in SKIP:
            continue
        oneof = fd.containing_oneof
        if oneof is not None and not getattr(oneof, "is_synthetic", False):
            if oneof.name in seen_oneofs:
                continue
            seen_oneofs.add(oneof.name)
            which = msg.WhichOneof(oneof.name)
            if which is None:
                out[_go_name(oneof.name)] = None
            else:
                f = desc.fields_by_name[which]
                val = getattr(msg, which)
                inner = {} if _is_zero(f, val) else {which: _scalar(f, val)}
                out[_go_name(oneof.name)] = inner
            continue
        val = getattr(msg, fd.name)
        if _repeated(fd):
            if len(val) == 0:
                continue
            out[fd.name] = [_scalar(fd, x) for x in val]
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if msg.HasField(fd.name):
                out[fd.name] = to_obj(val)
        elif not _is_zero(fd, val):
            out[fd.name] = _scalar(fd, val)
    return out


def dumps(obj: Any) -> str:
    """Go's json.Marshal of already converted data (HTML-escaping included)."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (
        s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def header_fields(msg: Message) -> dict[str, Any]:
    """A ResponseHeader embedded by pointer in a clientv3 struct: its fields flattened in."""
    return to_obj(msg)


def _repeated(fd: FieldDescriptor) -> bool:
    rep = getattr(fd, "is_repeated", None)
    if rep is not None:
        return bool(rep)
    return fd.label == FieldDescriptor.LABEL_REPEATED  # older protobuf
