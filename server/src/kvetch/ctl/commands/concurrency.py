"""lock and elect, on kvetch.client.concurrency (interoperable with etcdctl lock/elect)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from kvetch.client.concurrency import Election, Mutex, Session

from ..context import Ctx
from ..errors import EXIT_BAD_ARGS, CtlError


def _signal_event() -> asyncio.Event:
    ev = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, ev.set)
    return ev


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()


async def cmd_lock(ctx: Ctx, a: argparse.Namespace) -> None:
    if not a.args:
        raise CtlError("lock takes a lock name argument and an optional command to execute", EXIT_BAD_ARGS)
    c = ctx.client()
    stop = _signal_event()
    session = await Session.create(c, ttl=a.ttl)
    m = Mutex(session, a.args[0])
    lock_task = asyncio.ensure_future(m.lock())
    await _first(lock_task, stop.wait())
    if not lock_task.done():
        await session.close()
        raise SystemExit(1)
    lock_task.result()
    cmd = a.args[1:]
    if cmd:
        env = dict(os.environ)
        env["ETCD_LOCK_KEY"] = m.key
        env["ETCD_LOCK_REV"] = str(m.header.revision if m.header else 0)
        sys.stdout.flush()
        proc = await asyncio.create_subprocess_exec(*cmd, env=env)
        rc = await proc.wait()
        await m.unlock()
        await session.orphan()
        if rc != 0:
            raise SystemExit(rc)
        return
    got = await c.get(m.key)
    if not got.kvs:
        raise CtlError("lock lost on init")
    ctx.printer.get(got)
    sys.stdout.flush()
    await _first(stop.wait(), session.wait_done())
    if stop.is_set():
        await m.unlock()
        await session.orphan()
        return
    raise CtlError("session expired")


async def cmd_elect(ctx: Ctx, a: argparse.Namespace) -> None:
    if len(a.args) not in (1, 2):
        raise CtlError("elect takes one election name argument and an optional proposal argument", EXIT_BAD_ARGS)
    if len(a.args) == 1 and not a.listen:
        raise CtlError("no proposal argument but -l not set", EXIT_BAD_ARGS)
    if len(a.args) == 2 and a.listen:
        raise CtlError("proposal given but -l is set", EXIT_BAD_ARGS)
    c = ctx.client()
    stop = _signal_event()
    session = await Session.create(c)
    e = Election(session, a.args[0])
    if a.listen:
        async def observe() -> None:
            async for resp in e.observe():
                ctx.printer.get(resp)
                sys.stdout.flush()

        obs = asyncio.ensure_future(observe())
        await _first(obs, stop.wait())
        await session.close()
        if not stop.is_set():
            raise CtlError("elect: observer lost")
        return
    camp = asyncio.ensure_future(e.campaign(a.args[1]))
    await _first(camp, stop.wait())
    if not camp.done():
        await session.close()
        return
    camp.result()
    ctx.printer.get(await c.get(e.key))
    sys.stdout.flush()
    await _first(stop.wait(), session.wait_done())
    if not stop.is_set():
        raise CtlError("elect: session expired")
    await e.resign()
    await session.orphan()


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("lock", parents=[parent])
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.add_argument("--ttl", type=int, default=10)
    p.set_defaults(func=cmd_lock)
    p = sub.add_parser("elect", parents=[parent])
    p.add_argument("args", nargs="*")
    p.add_argument("-l", "--listen", action="store_true")
    p.set_defaults(func=cmd_elect)
