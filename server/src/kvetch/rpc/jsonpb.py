"""Protobuf <-> JSON the way etcd's grpc-gateway (v1, ``JSONPb{OrigName: true}``) does it.

Output: proto field names (``prev_kv``, ``grantedTTL``), defaults omitted,
64-bit integers as strings, 32-bit as numbers, bytes as standard base64, enums
by name, compact separators, and Go's HTML-safe escaping of ``<``, ``>``, ``&``.
Input: either field name spelling, numbers or strings for integers, names or
numbers for enums, unknown fields ignored; only the first JSON value of a body
counts (trailing bytes are ignored, as Go's ``json.Decoder`` does).

Decode errors carry messages shaped like Go's ``encoding/json`` ones
(``unexpected EOF``, ``invalid character 'g' looking for beginning of value``)
so that gateway error bodies look like etcd's.
"""

from __future__ import annotations

import base64
import codecs
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message


class _Float(float):
    """A JSON number with a fraction or exponent, keeping its literal (Go quotes it in errors)."""

    literal: str


def _parse_float(text: str) -> float:
    f = _Float(text)
    f.literal = text
    return f


_decoder = json.JSONDecoder(parse_float=_parse_float)
_WS = " \t\r\n"
_VALUE_START = '{["-0123456789tfn'


class DecodeError(ValueError):
    """The body is not valid JSON (message in Go's words)."""


class IncompleteJSON(Exception):
    """More bytes are needed to finish the current JSON value."""


def _go_syntax_message(err: json.JSONDecodeError, doc: str) -> str:
    pos = err.pos
    if pos >= len(doc) or err.msg.startswith("Unterminated"):
        return "unexpected EOF"
    ch = doc[pos]
    if err.msg.startswith("Expecting value"):
        where = "looking for beginning of value"
    elif err.msg.startswith("Expecting property name"):
        where = "looking for beginning of object key string"
    elif err.msg.startswith("Expecting ':'"):
        where = "after object key"
    elif err.msg.startswith("Expecting ','"):
        where = "after object key:value pair" if _in_object(doc, pos) else "after array element"
    else:
        where = "looking for beginning of value"
    shown = "\\'" if ch == "'" else ch
    return f"invalid character '{shown}' {where}"


def _in_object(doc: str, pos: int) -> bool:
    depth: list[str] = []
    in_str = esc = False
    for c in doc[:pos]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            depth.append(c)
        elif c in "}]" and depth:
            depth.pop()
    return bool(depth) and depth[-1] == "{"


def _go_type_name(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def first_value(text: str) -> tuple[Any, int] | None:
    """Decode the first JSON value of ``text``: (value, end) or None when blank.

    Raises :class:`DecodeError` for bad syntax (Go-style message) or
    :class:`IncompleteJSON` when the text ends inside a value.
    """
    start = 0
    n = len(text)
    while start < n and text[start] in _WS:
        start += 1
    if start == n:
        return None
    if text[start] not in _VALUE_START:
        raise DecodeError(f"invalid character {_quote_char(text[start])} looking for beginning of value")
    try:
        return _decoder.raw_decode(text, start)
    except json.JSONDecodeError as e:
        msg = _go_syntax_message(e, text)
        if msg == "unexpected EOF":
            raise IncompleteJSON() from None
        # a number or literal cut at the end of the buffer is incomplete, not wrong
        if e.pos >= n - 1 and text[start] in "-0123456789tfn":
            raise IncompleteJSON() from None
        raise DecodeError(msg) from None


def _quote_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{ch}'"


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_B64_STD = frozenset(_B64 + "+/")


def _b64_error(s: str) -> str | None:
    """None if Go accepts ``s`` as bytes (standard alphabet, padded); else Go's error."""
    body = s.rstrip("=")
    pad = len(s) - len(body)
    for i, c in enumerate(body):
        if c not in _B64_STD:
            return f"illegal base64 data at input byte {i}"
    if len(s) % 4 == 0 and pad <= 2 and (pad == 0 or len(body) % 4 in (2, 3)):
        return None
    return f"illegal base64 data at input byte {len(body) - len(body) % 4}"


_GO_INT = {
    FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_SINT64: "int64", FieldDescriptor.TYPE_SFIXED64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64", FieldDescriptor.TYPE_FIXED64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_SINT32: "int32", FieldDescriptor.TYPE_SFIXED32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32", FieldDescriptor.TYPE_FIXED32: "uint32",
}


def _check_scalar(fd: FieldDescriptor, v: Any) -> None:
    if v is None:
        return
    t = fd.type
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(v, str):
            raise DecodeError(f"json: cannot unmarshal {_go_type_name(v)} into Go value of type []uint8")
        err = _b64_error(v)
        if err:
            raise DecodeError(err)
    elif t in _GO_INT:
        go = _GO_INT[t]
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise DecodeError(f"json: cannot unmarshal {_go_type_name(v)} into Go value of type {go}")
        if isinstance(v, float):
            raise DecodeError(f"json: cannot unmarshal number {getattr(v, 'literal', repr(v))} into Go value of type {go}")
        if isinstance(v, str):
            inner = v.strip()
            if not inner or inner[0] not in "-0123456789":
                shown = inner[0] if inner else ""
                raise DecodeError(
                    f"invalid character {_quote_char(shown)} looking for beginning of value" if shown
                    else "unexpected end of JSON input"
                )
    elif t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(v, bool):
            raise DecodeError(f"json: cannot unmarshal {_go_type_name(v)} into Go value of type bool")
    elif t == FieldDescriptor.TYPE_STRING:
        if not isinstance(v, str):
            raise DecodeError(f"json: cannot unmarshal {_go_type_name(v)} into Go value of type string")
    elif t == FieldDescriptor.TYPE_ENUM:
        if isinstance(v, str):
            if fd.enum_type.values_by_name.get(v) is None:
                raise DecodeError(f"unknown value {json.dumps(json.dumps(v))} for enum {fd.enum_type.full_name}")
        elif isinstance(v, bool) or not isinstance(v, int):
            raise DecodeError(f"json: cannot unmarshal {_go_type_name(v)} into Go value of type int32")


def _validate(value: dict[str, Any], desc: Descriptor) -> None:
    """Reject what Go's jsonpb rejects and protobuf's Python parser lets through, with Go's words."""
    fields = desc.fields_by_name
    camel = desc.fields_by_camelcase_name
    for k, v in value.items():
        fd = fields.get(k) or camel.get(k)
        if fd is None or v is None:
            continue
        if fd.type == FieldDescriptor.TYPE_BYTES and not fd.is_repeated and isinstance(v, list):
            # Go's encoding/json fills a []byte from an array of numbers
            if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in v):
                raise DecodeError("json: cannot unmarshal array into Go value of type []uint8")
            value[k] = base64.b64encode(bytes(v)).decode()
            continue
        if fd.is_repeated:
            if not isinstance(v, list):
                raise DecodeError(f"json: cannot unmarshal {_go_type_name(v) if not isinstance(v, dict) else 'object'}"
                                  " into Go value of type []json.RawMessage")
            items = v
        else:
            items = [v]
        for item in items:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                if isinstance(item, dict):
                    _validate(item, fd.message_type)
                elif item is not None:
                    raise DecodeError(f"json: cannot unmarshal {_go_type_name(item)} into Go value of type "
                                      "map[string]json.RawMessage")
            else:
                _check_scalar(fd, item)
        if fd.type in _GO_INT and isinstance(v, str):
            value[k] = v.strip()  # Go reads the quoted number as JSON: surrounding blanks are fine


def parse_into(value: Any, message: Message) -> Message:
    """Fill ``message`` from an already decoded JSON value (dict)."""
    if not isinstance(value, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_go_type_name(value)} into Go value of type map[string]json.RawMessage"
        )
    _validate(value, message.DESCRIPTOR)
    try:
        json_format.ParseDict(value, message, ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise DecodeError(str(e)) from None
    return message


def parse_body(body: bytes, message_type: type[Message]) -> Message:
    """Decode a unary request body; an empty body is an empty request."""
    msg = message_type()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
    try:
        got = first_value(text)
    except IncompleteJSON:
        raise DecodeError("unexpected EOF") from None
    if got is None:
        return msg
    return parse_into(got[0], msg)


_INT64_TYPES = frozenset({
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64,
})
_FALLBACK_TYPES = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_GROUP})
_b64 = base64.b64encode
# per message descriptor: None (use json_format) or {field number: converter}
_plans: dict[str, Any] = {}


def _plan(desc: Descriptor) -> Any:
    name = desc.full_name
    if name in _plans:
        return _plans[name]
    _plans[name] = None  # recursion guard; replaced below
    if name.startswith("google.protobuf.") or any(
        f.type in _FALLBACK_TYPES or (f.message_type is not None and f.message_type.GetOptions().map_entry)
        for f in desc.fields
    ):
        return None
    plan: dict[str, Any] = {}
    for f in desc.fields:
        t = f.type
        if t == FieldDescriptor.TYPE_MESSAGE:
            if _plan(f.message_type) is None and f.message_type.full_name not in _plans:
                return None
            conv: Any = ("msg", None)
        elif t in _INT64_TYPES:
            conv = ("int64", None)
        elif t == FieldDescriptor.TYPE_BYTES:
            conv = ("bytes", None)
        elif t == FieldDescriptor.TYPE_ENUM:
            conv = ("enum", {v.number: v.name for v in f.enum_type.values})
        else:
            conv = ("plain", None)
        plan[f.name] = (conv[0], conv[1], f.is_repeated)
    _plans[name] = plan
    return plan


def _fast(message: Message) -> dict[str, Any] | None:
    plan = _plans.get(message.DESCRIPTOR.full_name, 0)
    if plan == 0:
        plan = _plan(message.DESCRIPTOR)
    if plan is None:
        return None
    out: dict[str, Any] = {}
    for fd, value in message.ListFields():
        kind, names, repeated = plan[fd.name]
        if kind == "plain":
            out[fd.name] = list(value) if repeated else value
        elif kind == "int64":
            out[fd.name] = [str(v) for v in value] if repeated else str(value)
        elif kind == "bytes":
            out[fd.name] = [_b64(v).decode() for v in value] if repeated else _b64(value).decode()
        elif kind == "enum":
            out[fd.name] = [names.get(v, v) for v in value] if repeated else names.get(value, value)
        else:
            if repeated:
                items = []
                for v in value:
                    d = _fast(v)
                    items.append(d if d is not None else _slow(v))
                out[fd.name] = items
            else:
                d = _fast(value)
                out[fd.name] = d if d is not None else _slow(value)
    return out


def _slow(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def to_obj(message: Message) -> dict[str, Any]:
    """The JSON object for ``message`` (a descriptor-driven fast path; json_format for exotic types)."""
    d = _fast(message)
    return d if d is not None else _slow(message)


_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 kept raw, HTML characters escaped as Go does."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if "<" in s or ">" in s or "&" in s or "\u2028" in s or "\u2029" in s:
        s = s.translate(_GO_ESCAPES)
    return s


def to_json(message: Message) -> str:
    return dumps(to_obj(message))


class StreamDecoder:
    """Incremental decoder for a body made of concatenated JSON values."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""

    def feed(self, data: bytes, final: bool = False) -> list[Any]:
        """Add bytes; return the complete values now available.

        At ``final`` a trailing incomplete value raises ``DecodeError('unexpected EOF')``.
        Raises :class:`DecodeError` on bad syntax (values decoded before it are lost
        only if they were in the same feed; callers feed small chunks).
        """
        self._buf += self._utf8.decode(data, final)
        out: list[Any] = []
        buf = self._buf
        pos = 0
        while True:
            try:
                got = first_value(buf[pos:]) if pos else first_value(buf)
            except IncompleteJSON:
                if final:
                    raise DecodeError("unexpected EOF") from None
                break
            if got is None:
                pos = len(buf)
                break
            value, end = got
            out.append(value)
            pos += end
        self._buf = buf[pos:]
        return out
