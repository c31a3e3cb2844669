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

import codecs
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

_decoder = json.JSONDecoder()
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


def parse_into(value: Any, message: Message) -> Message:
    """Fill ``message`` from an already decoded JSON value (dict)."""
    if not isinstance(value, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_go_type_name(value)} into Go value of type map[string]json.RawMessage"
        )
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


def to_obj(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


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
