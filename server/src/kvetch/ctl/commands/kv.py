"""get, put, del, txn, compaction."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.client import Compare, Op
from kvetch.client.ops import delete_request, put_request, range_request

from ..context import Ctx
from ..errors import EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_INVALID_INPUT, CtlError
from ..printers import FieldsPrinter, SimplePrinter


def _b(s: str) -> bytes:
    return s.encode("utf-8", errors="surrogateescape")


# -- get ---------------------------------------------------------------------------
def _get_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")
    p.add_argument("--consistency", default="l")
    p.add_argument("--order", default="")
    p.add_argument("--sort-by", default="")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--from-key", action="store_true")
    p.add_argument("--rev", type=int, default=0)
    p.add_argument("--keys-only", action="store_true")
    p.add_argument("--count-only", action="store_true")
    p.add_argument("--print-value-only", action="store_true")


def get_request(a: argparse.Namespace) -> rpc_pb2.RangeRequest:
    if not a.args:
        raise CtlError("get command needs one argument as key and an optional argument as range_end", EXIT_BAD_ARGS)
    if a.prefix and a.from_key:
        raise CtlError("`--prefix` and `--from-key` cannot be set at the same time, choose one", EXIT_BAD_ARGS)
    if a.keys_only and a.count_only:
        raise CtlError("`--keys-only` and `--count-only` cannot be set at the same time, choose one", EXIT_BAD_ARGS)
    if a.consistency not in ("l", "s"):
        raise CtlError(f'unknown consistency flag "{a.consistency}"', EXIT_BAD_FEATURE)
    key = _b(a.args[0])
    range_end = None
    if len(a.args) > 1:
        if a.prefix or a.from_key:
            raise CtlError("too many arguments, only accept one argument when `--prefix` or `--from-key` is set", EXIT_BAD_ARGS)
        range_end = _b(a.args[1])
    order = {"": 0, "ASCEND": 1, "DESCEND": 2}.get(a.order.upper())
    if order is None:
        raise CtlError(f"bad sort order {a.order}", EXIT_BAD_FEATURE)
    target = {"": 0, "KEY": 0, "VERSION": 1, "CREATE": 2, "MODIFY": 3, "VALUE": 4}.get(a.sort_by.upper())
    if target is None:
        raise CtlError(f"bad sort target {a.sort_by}", EXIT_BAD_FEATURE)
    if target == 0 and order == 1:
        order = 0
    return range_request(
        key, range_end, prefix=a.prefix, from_key=a.from_key, limit=a.limit, revision=max(a.rev, 0),
        sort_order=order, sort_target=target, serializable=a.consistency == "s",
        keys_only=a.keys_only, count_only=a.count_only,
    )


async def cmd_get(ctx: Ctx, a: argparse.Namespace) -> None:
    req = get_request(a)
    resp = await ctx.client().kv.range_request(req)
    if a.count_only and not isinstance(ctx.printer, FieldsPrinter):
        raise CtlError("--count-only is only for `--write-out=fields`", EXIT_BAD_ARGS)
    if a.print_value_only:
        if not isinstance(ctx.printer, SimplePrinter):
            raise CtlError("print-value-only is only for `--write-out=simple`", EXIT_BAD_ARGS)
        ctx.printer.value_only = True
    ctx.printer.get(resp)


# -- put ---------------------------------------------------------------------------
def _put_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")
    p.add_argument("--lease", default="0")
    p.add_argument("--prev-kv", action="store_true")
    p.add_argument("--ignore-value", action="store_true")
    p.add_argument("--ignore-lease", action="store_true")


def put_request_from(a: argparse.Namespace, stdin_ok: bool = True) -> rpc_pb2.PutRequest:
    if not a.args:
        raise CtlError("put command needs 1 argument and input from stdin or 2 arguments", EXIT_BAD_ARGS)
    key = a.args[0]
    if a.ignore_value and len(a.args) > 1:
        raise CtlError("put command needs only 1 argument when 'ignore-value' is set", EXIT_BAD_ARGS)
    value = b""
    if not a.ignore_value:
        if len(a.args) > 1:
            value = _b(a.args[1])
        elif stdin_ok:
            value = sys.stdin.buffer.read()
            if not value:
                raise CtlError("put command needs 1 argument and input from stdin or 2 arguments", EXIT_BAD_ARGS)
        else:
            raise CtlError("put command needs 1 argument and input from stdin or 2 arguments", EXIT_BAD_ARGS)
    lease = parse_hex_id(a.lease, "bad lease ID ({err}), expecting ID in Hex")
    return put_request(key.encode("utf-8", "surrogateescape"), value, lease=lease, prev_kv=a.prev_kv,
                       ignore_value=a.ignore_value, ignore_lease=a.ignore_lease)


def parse_hex_id(s: str, fmt: str, signed: bool = True) -> int:
    """Go's strconv.ParseInt/ParseUint(s, 16, 64) with its error text."""
    fn = "ParseInt" if signed else "ParseUint"
    pattern = r"[+-]?[0-9a-fA-F]+" if signed else r"[0-9a-fA-F]+"
    if not re.fullmatch(pattern, s):
        raise CtlError(fmt.format(err=f'strconv.{fn}: parsing "{s}": invalid syntax'), EXIT_BAD_ARGS)
    v = int(s, 16)
    if (signed and not -(1 << 63) <= v < 1 << 63) or (not signed and v >= 1 << 64):
        raise CtlError(fmt.format(err=f'strconv.{fn}: parsing "{s}": value out of range'), EXIT_BAD_ARGS)
    return v


async def cmd_put(ctx: Ctx, a: argparse.Namespace) -> None:
    resp = await ctx.client().kv.put_request(put_request_from(a))
    ctx.printer.put(resp)


# -- del ---------------------------------------------------------------------------
def _del_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--prev-kv", action="store_true")
    p.add_argument("--from-key", action="store_true")


def del_request_from(a: argparse.Namespace) -> rpc_pb2.DeleteRangeRequest:
    if not a.args:
        raise CtlError("del command needs one argument as key and an optional argument as range_end", EXIT_BAD_ARGS)
    if a.prefix and a.from_key:
        raise CtlError("`--prefix` and `--from-key` cannot be set at the same time, choose one", EXIT_BAD_ARGS)
    range_end = None
    if len(a.args) > 1:
        if a.prefix or a.from_key:
            raise CtlError("too many arguments, only accept one argument when `--prefix` or `--from-key` is set", EXIT_BAD_ARGS)
        range_end = _b(a.args[1])
    return delete_request(_b(a.args[0]), range_end, prefix=a.prefix, from_key=a.from_key, prev_kv=a.prev_kv)


async def cmd_del(ctx: Ctx, a: argparse.Namespace) -> None:
    req = del_request_from(a)
    resp = await ctx.client().kv.delete_request(req)
    ctx.printer.delete(resp)


# -- txn ---------------------------------------------------------------------------
_ARG_RE = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^'\"\s]\S*[^'\"\s]?")


def go_unquote(s: str) -> str:
    """Go's %q scan of a double-quoted (or back-quoted) string literal."""
    if len(s) >= 2 and s[0] == "`" and s[-1] == "`":
        return s[1:-1]
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise ValueError("bad quoted string")
    body = s[1:-1].encode("utf-8", "surrogateescape").decode("unicode_escape").encode("latin-1")
    return body.decode("utf-8", "surrogateescape")


def argify(s: str) -> list[str]:
    """Split a txn/watch line like etcdctl: quoted words keep their spaces."""
    out = []
    for m in _ARG_RE.findall(s):
        if m.startswith("'"):
            out.append(m[1:-1])
        elif m.startswith('"'):
            try:
                out.append(go_unquote(m))
            except (ValueError, UnicodeDecodeError) as e:
                raise CtlError(str(e), EXIT_INVALID_INPUT) from None
        else:
            out.append(m)
    return out


def _scan_quoted(s: str, i: int) -> tuple[str, int]:
    if i >= len(s) or s[i] not in "\"`":
        raise ValueError("expected quoted string")
    q = s[i]
    j = i + 1
    while j < len(s):
        if q == '"' and s[j] == "\\":
            j += 2
            continue
        if s[j] == q:
            return go_unquote(s[i : j + 1]), j + 1
        j += 1
    raise ValueError("unterminated quoted string")


def parse_compare(line: str) -> rpc_pb2.Compare:
    if "(" not in line:
        raise CtlError(f"malformed comparison: {line}", EXIT_INVALID_INPUT)
    target, rest = line.split("(", 1)
    try:
        key, i = _scan_quoted(rest, 0)
        if rest[i : i + 1] != ")":
            raise ValueError("expected )")
        rest2 = rest[i + 1 :].lstrip()
        op, _, rest3 = rest2.partition(" ")
        val, _ = _scan_quoted(rest3.lstrip(), 0)
    except ValueError:
        raise CtlError(f"malformed comparison: {line}", EXIT_INVALID_INPUT) from None
    try:
        if target in ("ver", "version"):
            return Compare.version(_b(key), op, int(val))
        if target in ("c", "create"):
            return Compare.create(_b(key), op, int(val))
        if target in ("m", "mod"):
            return Compare.mod(_b(key), op, int(val))
        if target in ("val", "value"):
            return Compare.value(_b(key), op, _b(val))
        if target == "lease":
            return Compare.lease(_b(key), op, int(val, 16))
    except ValueError:
        raise CtlError(f"invalid txn compare request: {line}", EXIT_INVALID_INPUT) from None
    raise CtlError(f"malformed comparison: {line} (unknown target {target})", EXIT_INVALID_INPUT)


class _Quiet(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ValueError(message)


_op_parsers: dict[str, argparse.ArgumentParser] = {}


def parse_op(line: str) -> rpc_pb2.RequestOp:
    args = argify(line)
    if len(args) < 2:
        raise CtlError(f"invalid txn compare request: {line}", EXIT_INVALID_INPUT)
    if not _op_parsers:
        for name, fn in (("put", _put_parser), ("get", _get_parser), ("del", _del_parser)):
            q = _Quiet(prog=name, add_help=False)
            fn(q)
            _op_parsers[name] = q
    p = _op_parsers.get(args[0])
    try:
        if p is None:
            raise ValueError("unknown")
        ns, extra = p.parse_known_args(args[1:])
        if any(x.startswith("-") for x in extra):
            raise ValueError("unknown flag")
        ns.args = list(ns.args) + extra
    except ValueError:
        raise CtlError(f"invalid txn request: {line}", EXIT_INVALID_INPUT) from None
    # argument errors of the op itself end etcdctl with that command's own message
    if args[0] == "put":
        return rpc_pb2.RequestOp(request_put=put_request_from(ns, stdin_ok=False))
    if args[0] == "get":
        return rpc_pb2.RequestOp(request_range=get_request(ns))
    return rpc_pb2.RequestOp(request_delete_range=del_request_from(ns))


def _read_block(interactive: bool, prompt: str, parse: Any) -> list[Any]:
    if interactive:
        sys.stdout.write(prompt + "\n")
        sys.stdout.flush()
    items: list[Any] = []
    while True:
        line = sys.stdin.readline()
        if not line.endswith("\n"):
            raise CtlError("EOF", EXIT_INVALID_INPUT)
        line = line.strip()
        if not line:
            return items
        items.append(parse(line))


async def cmd_txn(ctx: Ctx, a: argparse.Namespace) -> None:
    if a.args:
        raise CtlError("txn command does not accept argument", EXIT_BAD_ARGS)
    cmps = _read_block(a.interactive, "compares:", parse_compare)
    succ = _read_block(a.interactive, "success requests (get, put, del):", parse_op)
    fail = _read_block(a.interactive, "failure requests (get, put, del):", parse_op)
    c = ctx.client()
    resp = await c.kv.txn_request(rpc_pb2.TxnRequest(compare=cmps, success=succ, failure=fail), timeout=0)
    ctx.printer.txn(resp)


# -- compaction ----------------------------------------------------------------------
async def cmd_compaction(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("compaction command needs 1 argument", EXIT_BAD_ARGS)
    try:
        rev = int(a.args[0], 10)
    except ValueError:
        raise CtlError(f'strconv.ParseInt: parsing "{a.args[0]}": invalid syntax') from None
    await ctx.client().kv.compact(rev, physical=a.physical)
    print("compacted revision", rev)


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("get", parents=[parent])
    _get_parser(p)
    p.set_defaults(func=cmd_get)
    p = sub.add_parser("put", parents=[parent])
    _put_parser(p)
    p.set_defaults(func=cmd_put)
    p = sub.add_parser("del", parents=[parent])
    _del_parser(p)
    p.set_defaults(func=cmd_del)
    p = sub.add_parser("txn", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("-i", "--interactive", action="store_true")
    p.set_defaults(func=cmd_txn)
    p = sub.add_parser("compaction", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("--physical", action="store_true")
    p.set_defaults(func=cmd_compaction)


__all__ = ["Op", "argify", "register"]
