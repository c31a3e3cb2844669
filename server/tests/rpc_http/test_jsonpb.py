"""The fast JSON encoder equals protobuf's json_format (etcd's field names) on every etcd message type."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from kvetch.api.authpb import auth_pb2
from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.mvccpb import kv_pb2
from kvetch.rpc import jsonpb

F = FieldDescriptor


def _fill(msg: Message, rng: random.Random, depth: int = 0) -> None:
    for fd in msg.DESCRIPTOR.fields:
        if rng.random() < 0.3:
            continue  # leave some fields at their default
        n = rng.randint(0, 3) if fd.is_repeated else 1
        for _ in range(n):
            if fd.type == F.TYPE_MESSAGE:
                if depth > 3:
                    break
                sub = getattr(msg, fd.name).add() if fd.is_repeated else getattr(msg, fd.name)
                if not fd.is_repeated:
                    sub.SetInParent()
                _fill(sub, rng, depth + 1)
                continue
            v = _value(fd, rng)
            if fd.is_repeated:
                getattr(msg, fd.name).append(v)
            else:
                setattr(msg, fd.name, v)


def _value(fd: FieldDescriptor, rng: random.Random) -> Any:
    t = fd.type
    if t == F.TYPE_BOOL:
        return rng.random() < 0.5
    if t == F.TYPE_STRING:
        return rng.choice(["", "a", "ü<&>", "member-1", "\\u2028"])
    if t == F.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 9)))
    if t == F.TYPE_ENUM:
        numbers = [v.number for v in fd.enum_type.values]
        return rng.choice([*numbers, 77])  # 77: a number with no name
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return rng.choice([0, 1, 2**63, 2**64 - 1, rng.randrange(2**64)])
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return rng.choice([0, 1, 2**32 - 1])
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return rng.choice([0, -1, 2**31 - 1, -(2**31)])
    return rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randrange(-(2**40), 2**40)])


def _all_messages() -> list[type[Message]]:
    out = []
    for mod in (rpc_pb2, kv_pb2, auth_pb2):
        for name in mod.DESCRIPTOR.message_types_by_name:
            out.append(getattr(mod, name))
    return out


@pytest.mark.parametrize("cls", _all_messages(), ids=lambda c: c.DESCRIPTOR.full_name)
def test_fast_encoder_equals_json_format(cls: type[Message]) -> None:
    rng = random.Random(cls.DESCRIPTOR.full_name)
    for _ in range(30):
        msg = cls()
        _fill(msg, rng)
        want = MessageToDict(msg, preserving_proto_field_name=True)
        got = jsonpb.to_obj(msg)
        assert json.dumps(got) == json.dumps(want)  # same keys, order and values


def test_go_escaping_and_compact_output() -> None:
    msg = rpc_pb2.StatusResponse(version="<&>\u2028", dbSize=1)
    assert jsonpb.to_json(msg) == '{"version":"\\u003c\\u0026\\u003e\\u2028","dbSize":"1"}'
