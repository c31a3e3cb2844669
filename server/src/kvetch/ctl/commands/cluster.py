"""member, endpoint, alarm, defrag, snapshot save, move-leader, downgrade."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from kvetch.client import errors

from ..context import Ctx
from ..errors import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INTERRUPTED, CtlError
from ..gofmt import duration, quote
from ..printers import EpHashKV, EpHealth, EpStatus, SimplePrinter
from .kv import parse_hex_id


def _member_id(s: str) -> int:
    return parse_hex_id(s, "bad member ID arg ({err}), expecting ID in Hex", signed=False)


# -- member ------------------------------------------------------------------------
async def cmd_member_add(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) < 1:
        raise CtlError("member name not provided", EXIT_BAD_ARGS)
    if len(a.args) > 1:
        ev = "too many arguments"
        for s in a.args[1:]:
            if s.startswith("http"):
                ev += f", did you mean --peer-urls={s}"
        raise CtlError(ev, EXIT_BAD_ARGS)
    name = a.args[0]
    if not a.peer_urls:
        raise CtlError("member peer urls not provided", EXIT_BAD_ARGS)
    urls = a.peer_urls.split(",")
    resp = await ctx.client().cluster.member_add(urls, is_learner=a.learner)
    ctx.printer.member_add(resp)
    if isinstance(ctx.printer, SimplePrinter):
        conf = []
        for m in resp.members:
            for u in m.peerURLs:
                conf.append(f"{name if m.ID == resp.member.ID else m.name}={u}")
        print()
        print(f"ETCD_NAME={quote(name)}")
        print(f"ETCD_INITIAL_CLUSTER={quote(','.join(conf))}")
        print(f"ETCD_INITIAL_ADVERTISE_PEER_URLS={quote(a.peer_urls)}")
        print('ETCD_INITIAL_CLUSTER_STATE="existing"')


async def cmd_member_remove(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("member ID is not provided", EXIT_BAD_ARGS)
    mid = _member_id(a.args[0])
    resp = await ctx.client().cluster.member_remove(mid)
    ctx.printer.member_remove(mid, resp)


async def cmd_member_update(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("member ID is not provided", EXIT_BAD_ARGS)
    mid = _member_id(a.args[0])
    if not a.peer_urls:
        raise CtlError("member peer urls not provided", EXIT_BAD_ARGS)
    resp = await ctx.client().cluster.member_update(mid, a.peer_urls.split(","))
    ctx.printer.member_update(mid, resp)


async def cmd_member_promote(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("member ID is not provided", EXIT_BAD_ARGS)
    mid = _member_id(a.args[0])
    resp = await ctx.client().cluster.member_promote(mid)
    ctx.printer.member_promote(mid, resp)


async def cmd_member_list(ctx: Ctx, a: argparse.Namespace) -> None:
    resp = await ctx.client().cluster.member_list(linearizable=getattr(a, "consistency", "l") == "l" and False)
    ctx.printer.member_list(resp)


# -- endpoint ------------------------------------------------------------------------
async def endpoints_from_cluster(ctx: Ctx, cluster: bool) -> list[str]:
    if not cluster:
        return list(ctx.endpoints)
    c = ctx.client()
    try:
        ml = await c.cluster.member_list()
    except errors.EtcdError as e:
        raise CtlError(f"failed to fetch endpoints from etcd cluster member list: {e.message}") from None
    return [u for m in ml.members for u in m.clientURLs]


async def _health_one(ctx: Ctx, ep: str) -> EpHealth:
    c = ctx.client([ep])
    st = time.monotonic()
    h = EpHealth(ep, False, "")
    try:
        await c.get("health")
        h.health = True
    except errors.PermissionDeniedError:
        h.health = True
    except errors.EtcdError as e:
        h.error = e.message
    h.took = duration(time.monotonic() - st)
    if h.health:
        try:
            al = await c.maintenance.alarm_list()
            if al.alarms:
                h.health = False
                h.error = "Active Alarm(s): " + "".join(
                    {1: "NOSPACE ", 2: "CORRUPT "}.get(x.alarm, "UNKNOWN ") for x in al.alarms
                )
        except errors.EtcdError:
            h.health = False
            h.error = "Unable to fetch the alarm list"
    return h


async def cmd_ep_health(ctx: Ctx, a: argparse.Namespace) -> None:
    eps = await endpoints_from_cluster(ctx, a.cluster)
    hs = list(await asyncio.gather(*(_health_one(ctx, ep) for ep in eps)))
    ctx.printer.endpoint_health(hs)
    if any(h.error for h in hs):
        raise CtlError("unhealthy cluster")


async def cmd_ep_status(ctx: Ctx, a: argparse.Namespace) -> None:
    eps = await endpoints_from_cluster(ctx, a.cluster)
    c = ctx.client(eps)
    out, failed = [], False
    for ep in eps:
        try:
            out.append(EpStatus(ep, await c.maintenance.status(endpoint=ep)))
        except errors.EtcdError as e:
            failed = True
            sys.stderr.write(f"Failed to get the status of endpoint {ep} ({e.message})\n")
    ctx.printer.endpoint_status(out)
    if failed:
        sys.stdout.flush()
        raise SystemExit(EXIT_ERROR)


async def cmd_ep_hashkv(ctx: Ctx, a: argparse.Namespace) -> None:
    eps = await endpoints_from_cluster(ctx, a.cluster)
    c = ctx.client(eps)
    out, err = [], None
    for ep in eps:
        try:
            out.append(EpHashKV(ep, await c.maintenance.hash_kv(a.rev, endpoint=ep)))
        except errors.EtcdError as e:
            err = e
            sys.stderr.write(f"Failed to get the hash of endpoint {ep} ({e.message})\n")
    ctx.printer.endpoint_hashkv(out)
    if err is not None:
        raise CtlError(err.message)


# -- alarm / defrag / snapshot / move-leader / downgrade ---------------------------------
async def cmd_alarm_list(ctx: Ctx, a: argparse.Namespace) -> None:
    if a.args:
        raise CtlError("alarm list command accepts no arguments", EXIT_BAD_ARGS)
    ctx.printer.alarm(await ctx.client().maintenance.alarm_list())


async def cmd_alarm_disarm(ctx: Ctx, a: argparse.Namespace) -> None:
    if a.args:
        raise CtlError("alarm disarm command accepts no arguments", EXIT_BAD_ARGS)
    ctx.printer.alarm(await ctx.client().maintenance.alarm_disarm())


async def cmd_defrag(ctx: Ctx, a: argparse.Namespace) -> None:
    if a.data_dir:
        raise CtlError("--data-dir is not supported; use kvetchutl defrag", EXIT_BAD_ARGS)
    eps = await endpoints_from_cluster(ctx, a.cluster)
    c = ctx.client(eps)
    failures = 0
    for ep in eps:
        try:
            await c.maintenance.defragment(endpoint=ep)
            print(f"Finished defragmenting etcd member[{ep}]")
        except errors.EtcdError as e:
            sys.stderr.write(f"Failed to defragment etcd member[{ep}] ({e.message})\n")
            failures += 1
    if failures:
        sys.stdout.flush()
        raise SystemExit(EXIT_ERROR)


async def cmd_snapshot_save(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("snapshot save expects one argument", EXIT_BAD_ARGS)
    if len(ctx.endpoints) != 1:
        raise CtlError(f"snapshot must be requested to one selected node, not multiple {ctx.endpoints}", EXIT_BAD_ARGS)
    path = a.args[0]
    c = ctx.client()
    try:
        await c.maintenance.snapshot(path, endpoint=ctx.endpoints[0], timeout=0)
    except errors.EtcdError as e:
        raise CtlError(e.message, EXIT_INTERRUPTED) from None
    print(f"Snapshot saved at {path}")


async def cmd_move_leader(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) != 1:
        raise CtlError("move-leader command needs 1 argument", EXIT_BAD_ARGS)
    target = parse_hex_id(a.args[0], "{err}", signed=False)
    c = ctx.client()
    leader_ep, leader_id = None, 0
    for ep in ctx.endpoints:
        st = await c.maintenance.status(endpoint=ep)
        if st.header.member_id == st.leader:
            leader_ep, leader_id = ep, st.leader
            break
    if leader_ep is None:
        raise CtlError(f"no leader endpoint given at [{' '.join(ctx.endpoints)}]", EXIT_BAD_ARGS)
    resp = await c.maintenance.move_leader(target, endpoint=leader_ep)
    ctx.printer.move_leader(leader_id, target, resp)


async def cmd_downgrade(ctx: Ctx, a: argparse.Namespace) -> None:
    """etcdctl 3.6's ``downgrade`` (3.5.1 has no such command; its output is copied from 3.6)."""
    action = a.action
    version = ""
    if action != "cancel":
        if len(a.args) < 1:
            raise CtlError("TARGET_VERSION not provided", EXIT_BAD_ARGS)
        if len(a.args) > 1:
            raise CtlError("too many arguments", EXIT_BAD_ARGS)
        version = a.args[0]
        if not version:
            raise CtlError("target version not provided", EXIT_BAD_ARGS)
    resp = await ctx.client().maintenance.downgrade(action, version)
    if ctx.write_out == "json":
        ctx.printer.msg(resp)  # type: ignore[attr-defined]
    else:
        print(f"Downgrade {action} success, cluster version {resp.version}")


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    mp = sub.add_parser("member", parents=[parent])
    ms = mp.add_subparsers(dest="subcmd", required=True)
    p = ms.add_parser("add", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("--peer-urls", default="")
    p.add_argument("--learner", action="store_true")
    p.set_defaults(func=cmd_member_add)
    p = ms.add_parser("update", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("--peer-urls", default="")
    p.set_defaults(func=cmd_member_update)
    for name, fn in (("remove", cmd_member_remove), ("promote", cmd_member_promote), ("list", cmd_member_list)):
        p = ms.add_parser(name, parents=[parent])
        p.add_argument("args", nargs="*")
        p.set_defaults(func=fn)

    ep = sub.add_parser("endpoint", parents=[parent])
    es = ep.add_subparsers(dest="subcmd", required=True)
    for name, fn in (("health", cmd_ep_health), ("status", cmd_ep_status), ("hashkv", cmd_ep_hashkv)):
        p = es.add_parser(name, parents=[parent])
        p.add_argument("args", nargs="*")
        p.add_argument("--cluster", action="store_true")
        if name == "hashkv":
            p.add_argument("--rev", type=int, default=0)
        p.set_defaults(func=fn)

    ap = sub.add_parser("alarm", parents=[parent])
    als = ap.add_subparsers(dest="subcmd", required=True)
    for name, fn in (("list", cmd_alarm_list), ("disarm", cmd_alarm_disarm)):
        p = als.add_parser(name, parents=[parent])
        p.add_argument("args", nargs="*")
        p.set_defaults(func=fn)

    p = sub.add_parser("defrag", parents=[parent])
    p.add_argument("--cluster", action="store_true")
    p.add_argument("--data-dir", default="")
    p.set_defaults(func=cmd_defrag)

    sp = sub.add_parser("snapshot", parents=[parent])
    ss = sp.add_subparsers(dest="subcmd", required=True)
    p = ss.add_parser("save", parents=[parent])
    p.add_argument("args", nargs="*")
    p.set_defaults(func=cmd_snapshot_save)

    p = sub.add_parser("move-leader", parents=[parent])
    p.add_argument("args", nargs="*")
    p.set_defaults(func=cmd_move_leader)

    dp = sub.add_parser("downgrade", parents=[parent])
    ds = dp.add_subparsers(dest="action", required=True)
    for name in ("validate", "enable", "cancel"):
        p = ds.add_parser(name, parents=[parent])
        p.add_argument("args", nargs="*")
        p.set_defaults(func=cmd_downgrade)
