"""lease grant | revoke | timetolive | list | keep-alive."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kvetch.client import errors

from ..context import Ctx
from ..errors import EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, EXIT_ERROR, CtlError
from .kv import parse_hex_id


def _lease_id(s: str) -> int:
    return parse_hex_id(s, "bad lease ID arg ({err}), expecting ID in Hex")


async def cmd_grant(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("lease grant command needs TTL argument", EXIT_BAD_ARGS)
    try:
        ttl = int(a.args[0], 10)
    except ValueError:
        raise CtlError(f'bad TTL (strconv.ParseInt: parsing "{a.args[0]}": invalid syntax)', EXIT_BAD_ARGS) from None
    try:
        resp = await ctx.client().lease.grant(ttl)
    except errors.EtcdError as e:
        raise CtlError(f"failed to grant lease ({e.message})", EXIT_ERROR) from None
    ctx.printer.grant(resp)


async def cmd_revoke(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("lease revoke command needs 1 argument", EXIT_BAD_ARGS)
    lid = _lease_id(a.args[0])
    try:
        resp = await ctx.client().lease.revoke(lid)
    except errors.EtcdError as e:
        raise CtlError(f"failed to revoke lease ({e.message})", EXIT_ERROR) from None
    ctx.printer.revoke(lid, resp)


async def cmd_timetolive(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("lease timetolive command needs lease ID as argument", EXIT_BAD_ARGS)
    lid = _lease_id(a.args[0])
    try:
        resp = await ctx.client().lease.time_to_live(lid, keys=a.keys, timeout=0)
    except errors.EtcdError as e:
        raise CtlError(e.message, EXIT_BAD_CONNECTION) from None
    ctx.printer.time_to_live(resp, a.keys)


async def cmd_list(ctx: Ctx, a: argparse.Namespace) -> None:
    try:
        resp = await ctx.client().lease.leases(timeout=0)
    except errors.EtcdError as e:
        raise CtlError(e.message, EXIT_BAD_CONNECTION) from None
    ctx.printer.leases(resp)


async def cmd_keep_alive(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("lease keep-alive command needs lease ID as argument", EXIT_BAD_ARGS)
    lid = _lease_id(a.args[0])
    c = ctx.client()
    if a.once:
        try:
            resp = await c.lease.keep_alive_once(lid, timeout=0)
        except errors.EtcdError as e:
            raise CtlError(e.message, EXIT_BAD_CONNECTION) from None
        ctx.printer.keep_alive(resp)
        return
    try:
        async for resp in c.lease.keep_alive(lid):
            ctx.printer.keep_alive(resp)
            sys.stdout.flush()
    except errors.LeaseNotFoundError:
        pass
    print(f"lease {lid:016x} expired or revoked.")


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    lp = sub.add_parser("lease", parents=[parent])
    ls = lp.add_subparsers(dest="subcmd", required=True)
    for name, fn in (("grant", cmd_grant), ("revoke", cmd_revoke), ("list", cmd_list)):
        p = ls.add_parser(name, parents=[parent])
        p.add_argument("args", nargs="*")
        p.set_defaults(func=fn)
    p = ls.add_parser("timetolive", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("--keys", action="store_true")
    p.set_defaults(func=cmd_timetolive)
    p = ls.add_parser("keep-alive", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("--once", action="store_true")
    p.set_defaults(func=cmd_keep_alive)
