"""The /v3 JSON gateway and the plain HTTP endpoints, byte for byte against real etcd 3.5.1.

The gateway runs over ``FakeEtcd`` (conftest): a unit-level in-memory stand-in
for the server, so this checks the HTTP/JSON layer only; the end-to-end test
against the real kvetch server comes with the server. Requests go over real
loopback HTTP to both our gateway and a real etcd 3.5.1 started per test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import requests
from kvetch.api.etcdserverpb import rpc_pb2 as pb
from kvetch.rpc.api import API, Method
from kvetch.rpc.callctx import get_call
from kvetch.rpc.front import serve_http
from kvetch.rpc.gateway import build_gateway_app

COMPARED_HEADERS = ("Content-Type", "Grpc-Metadata-Content-Type", "Access-Control-Allow-Origin", "Allow")


async def _with_gateway(api: API, info: Any, body: Callable[[str], Awaitable[Any]], **kw: Any) -> Any:
    srv = await serve_http("127.0.0.1", 0, build_gateway_app(api, info, **kw))
    try:
        return await body(f"http://127.0.0.1:{srv.port}")
    finally:
        await srv.close()


def _ids_from(etcd_url: str) -> tuple[int, int, int]:
    h = requests.post(etcd_url + "/v3/maintenance/status", data="{}", timeout=5).json()["header"]
    return int(h["cluster_id"]), int(h["member_id"]), int(h["raft_term"])


async def _exchange(session: aiohttp.ClientSession, base: str, method: str, path: str, body: str | None):
    async with session.request(method, base + path, data=body) as r:
        headers = {h: r.headers.get(h) for h in COMPARED_HEADERS}
        return r.status, headers, await r.read()


UNARY_SCRIPT: list[tuple[str, str, str | None]] = [
    ("POST", "/v3/kv/put", '{"key":"Zm9v","value":"YmFy"}'),
    ("POST", "/v3/kv/put", '{"key":"Zm9v","value":"YmFy","prev_kv":true}'),
    ("POST", "/v3/kv/put", '{"key":"Zm9v","value":"PGI+Jg==","prevKv":true}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v"}'),
    ("POST", "/v3/kv/range", '{"key":"bm9uZQ=="}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","count_only":true}'),
    ("POST", "/v3/kv/put", '{"key":"YQ==","value":"MQ=="}'),
    ("POST", "/v3/kv/put", '{"key":"Yg==","value":"Mg=="}'),
    ("POST", "/v3/kv/range", '{"key":"YQ==","range_end":"Yw==","sort_order":"DESCEND","limit":1}'),
    ("POST", "/v3/kv/range", '{"key":"YQ==","range_end":"Yw==","keys_only":true,"sort_order":2}'),
    ("POST", "/v3/kv/put", '{"key":"","value":"YmFy"}'),
    ("POST", "/v3/kv/put", "{}"),
    ("POST", "/v3/kv/range", ""),
    ("POST", "/v3/kv/put", "garbage"),
    ("POST", "/v3/kv/range", '{"key":"Zm9v"'),
    ("POST", "/v3/kv/range", "[]"),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","unknownfield":1}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v"} trailing bytes'),
    ("POST", "/v3/kv/range", '{"key":"!!!"}'),
    ("POST", "/v3/kv/range", '{"key":"a-_b"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9vYg"}'),
    ("POST", "/v3/kv/range", '{"key":123}'),
    ("POST", "/v3/kv/range", '{"key":[102,111,111]}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","limit":"abc"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","limit":" 1"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","limit":2.0}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","limit":1e3}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","limit":true}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","serializable":"true"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","sort_order":"BOGUS"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","sort_order":1,"sort_target":"KEY"}'),
    ("POST", "/v3/kv/range", '{"key":null}'),
    ("POST", "/v3/kv/put", '{"key":"Zm9v","value":"!!"}'),
    ("POST", "/v3/kv/put", '{"key":"YQ==","value":"' + "YWFh" * (700_000 + 4) + '"}'),  # > 2 MiB: gRPC limit
    ("POST", "/v3/kv/range", '{"key":"Zm9v","revision":"1000"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","revision":1000}'),
    ("POST", "/v3/kv/txn", '{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VERSION","version":3}],'
                           '"success":[{"request_range":{"key":"Zm9v"}},{"request_put":{"key":"Zm9v","value":"YmF6"}}]}'),
    ("POST", "/v3/kv/txn", '{"compare":[{"key":"Zm9v","target":"CREATE","create_revision":"0"}],'
                           '"failure":[{"request_delete_range":{"key":"eA=="}}]}'),
    ("POST", "/v3/kv/deleterange", '{"key":"Zm9v","prev_kv":true}'),
    ("POST", "/v3/kv/deleterange", '{"key":"Zm9v"}'),
    ("POST", "/v3/kv/compaction", '{"revision":"3"}'),
    ("POST", "/v3/kv/compaction", '{"revision":"3"}'),
    ("POST", "/v3/kv/compaction", '{"revision":"100"}'),
    ("POST", "/v3/kv/range", '{"key":"Zm9v","revision":2}'),
    ("POST", "/v3/lease/revoke", '{"ID":"12345"}'),
    ("POST", "/v3/kv/put", '{"key":"Zm9v","value":"YmFy","lease":"999"}'),
    ("POST", "/v3/lease/grant", '{"TTL":60,"ID":7}'),
    ("POST", "/v3/lease/grant", '{"TTL":60,"ID":7}'),
    ("POST", "/v3/kv/lease/revoke", '{"ID":7}'),
    ("POST", "/v3beta/kv/range", '{"key":"YQ=="}'),
    ("POST", "/v3/kv/nope", "{}"),
    ("GET", "/v3/kv/range", None),
    ("POST", "/nothing-here", "{}"),
    ("GET", "/version", None),
    ("GET", "/health", None),
    ("POST", "/health", "{}"),
    ("OPTIONS", "/v3/kv/range", None),
]


def test_unary_answers_equal_real_etcd_byte_for_byte(real_etcd: Any, kit: Any) -> None:
    cid, mid, term = _ids_from(real_etcd.url)
    fake = kit.FakeEtcd(cid, mid, term)

    async def run(base: str) -> list[Any]:
        async with aiohttp.ClientSession() as s:
            return [await _exchange(s, base, m, p, b) for m, p, b in UNARY_SCRIPT]

    async def both() -> tuple[list[Any], list[Any]]:
        ours = await _with_gateway(fake.api, kit.FakeInfo(), run)
        theirs = await run(real_etcd.url)
        return ours, theirs

    ours, theirs = asyncio.run(both())
    for step, o, t in zip(UNARY_SCRIPT, ours, theirs, strict=True):
        assert o == t, f"{step}: ours={o} etcd={t}"
    # the script does reach the interesting cases
    statuses = {t[0] for t in theirs}
    assert {200, 400, 404, 405, 503} - statuses == {503}


def _watch_lines(base: str, n: int, body: str, after: Callable[[aiohttp.ClientSession], Awaitable[None]]):
    async def go() -> list[bytes]:
        async with aiohttp.ClientSession() as s, s.post(base + "/v3/watch", data=body) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json"
            lines = [await asyncio.wait_for(r.content.readline(), 10)]
            await after(s)
            for _ in range(n - 1):
                lines.append(await asyncio.wait_for(r.content.readline(), 10))
            return lines

    return go()


def test_watch_stream_lines_equal_real_etcd(real_etcd: Any, kit: Any) -> None:
    cid, mid, term = _ids_from(real_etcd.url)
    fake = kit.FakeEtcd(cid, mid, term)
    body = '{"create_request":{"key":"dw==","prev_kv":true}}\n{"create_request":{"key":"eA==","watch_id":5}}'

    async def writes(s: aiohttp.ClientSession, base: str) -> None:
        for path, b in (("/v3/kv/put", '{"key":"dw==","value":"MQ=="}'), ("/v3/kv/put", '{"key":"eA==","value":"Mg=="}'),
                        ("/v3/kv/deleterange", '{"key":"dw=="}')):
            async with s.post(base + path, data=b) as r:
                assert r.status == 200

    async def both() -> tuple[list[bytes], list[bytes]]:
        async def ours_body(base: str) -> list[bytes]:
            return await _watch_lines(base, 5, body, lambda s: writes(s, base))

        ours = await _with_gateway(fake.api, kit.FakeInfo(), ours_body)
        theirs = await _watch_lines(real_etcd.url, 5, body, lambda s: writes(s, real_etcd.url))
        return ours, theirs

    ours, theirs = asyncio.run(both())
    # two "created" lines come first in either order of arrival; the events follow in order
    assert sorted(ours[:2]) == sorted(theirs[:2])
    assert ours[2:] == theirs[2:]
    assert all(line.endswith(b"}}\n") and line.startswith(b'{"result":') for line in theirs)
    assert b'"type":"DELETE"' in theirs[4] and b'"prev_kv"' in theirs[4]


def test_stream_with_undecodable_first_request_fails_like_etcd(real_etcd: Any, kit: Any) -> None:
    fake = kit.FakeEtcd()

    async def go(base: str) -> list[Any]:
        async with aiohttp.ClientSession() as s:
            return [await _exchange(s, base, "POST", "/v3/watch", "xx"),
                    await _exchange(s, base, "POST", "/v3/lease/keepalive", "[1]")]

    async def both() -> tuple[Any, Any]:
        return await _with_gateway(fake.api, kit.FakeInfo(), go), await go(real_etcd.url)

    ours, theirs = asyncio.run(both())
    assert ours == theirs
    assert theirs[0][0] == 500 and json.loads(theirs[0][2])["code"] == 2


def test_keepalive_stream_equals_real_etcd(real_etcd: Any, kit: Any) -> None:
    cid, mid, term = _ids_from(real_etcd.url)
    fake = kit.FakeEtcd(cid, mid, term)

    async def go(base: str) -> list[bytes]:
        async with aiohttp.ClientSession() as s:
            async with s.post(base + "/v3/lease/grant", data='{"TTL":60,"ID":7}') as r:
                assert r.status == 200
            async with s.post(base + "/v3/lease/keepalive", data='{"ID":7} {"ID":"12345"}') as r:
                assert r.status == 200
                return [await asyncio.wait_for(r.content.readline(), 10) for _ in range(2)]

    async def both() -> tuple[Any, Any]:
        return await _with_gateway(fake.api, kit.FakeInfo(), go), await go(real_etcd.url)

    ours, theirs = asyncio.run(both())
    assert ours == theirs


def test_server_stream_error_ends_with_grpc_gateway_error_chunk(kit: Any) -> None:
    fake = kit.FakeEtcd()

    async def go(base: str) -> tuple[int, list[dict[str, Any]], bytes]:
        async with aiohttp.ClientSession() as s:
            async with s.post(base + "/v3/kv/put", data='{"key":"YQ==","value":"Yg=="}') as r:
                assert r.status == 200
            async with s.post(base + "/v3/maintenance/snapshot", data="{}") as r:
                raw = await r.read()
                lines = raw.split(b"\n")
                return r.status, [json.loads(x) for x in lines[:-1]], lines[-1]

    status, results, last = asyncio.run(_with_gateway(fake.api, kit.FakeInfo(), go))
    assert status == 200
    assert results and all("result" in x for x in results)
    assert json.loads(last) == {"error": {"grpc_code": 14, "http_code": 503, "message": "snapshot interrupted (test)",
                                          "http_status": "Service Unavailable"}}


def test_authorization_header_and_grpc_metadata_reach_the_handler(kit: Any) -> None:
    seen: list[Any] = []

    async def auth_status(req: pb.AuthStatusRequest) -> pb.AuthStatusResponse:
        seen.append(get_call())
        return pb.AuthStatusResponse(enabled=True, authRevision=3)

    api = API()
    api.add(Method("/etcdserverpb.Auth/AuthStatus", pb.AuthStatusRequest, pb.AuthStatusResponse, "unary", auth_status))

    async def go(base: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.post(
            base + "/v3/auth/status", data="{}", headers={"Authorization": "tok.42", "Grpc-Metadata-X-Foo": "bar"}
        ) as r:
            return r.status, await r.text()

    status, text = asyncio.run(_with_gateway(api, kit.FakeInfo(), go))
    assert (status, text) == (200, '{"enabled":true,"authRevision":"3"}')
    call = seen[0]
    assert call.transport == "http" and call.token() == "tok.42" and call.metadata["x-foo"] == "bar"
    assert call.peer == "127.0.0.1"


def test_request_larger_than_max_request_bytes_is_resource_exhausted(kit: Any) -> None:
    fake = kit.FakeEtcd()
    big = "QUFB" * 700_000  # 2.1 MB of value

    async def go(base: str) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.post(base + "/v3/kv/put", data=f'{{"key":"YQ==","value":"{big}"}}') as r:
            return r.status, await r.json()

    status, body = asyncio.run(_with_gateway(fake.api, kit.FakeInfo(), go, max_request_bytes=1024 * 1024))
    assert status == 429
    assert body["code"] == 8
    assert body["message"].startswith("grpc: received message larger than max (21")
    assert fake.rev == 1


def test_handler_bug_is_unknown_500(kit: Any) -> None:
    async def broken(req: pb.StatusRequest) -> pb.StatusResponse:
        raise ZeroDivisionError("boom")

    api = API()
    api.add(Method("/etcdserverpb.Maintenance/Status", pb.StatusRequest, pb.StatusResponse, "unary", broken))

    async def go(base: str) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.post(base + "/v3/maintenance/status", data="{}") as r:
            return r.status, await r.json()

    status, body = asyncio.run(_with_gateway(api, kit.FakeInfo(), go))
    assert status == 500 and body["code"] == 2 and "boom" in body["message"]


def test_health_endpoints_follow_serverinfo(kit: Any) -> None:
    info = kit.FakeInfo()

    async def go(base: str) -> list[Any]:
        out = []
        async with aiohttp.ClientSession() as s:
            for path in ("/health", "/health?exclude=NOSPACE&serializable=true", "/livez", "/readyz?verbose"):
                async with s.get(base + path) as r:
                    out.append((r.status, await r.text()))
            info.healthy = (False, "ALARM NOSPACE")
            info.failing = {"linearizable_read": "etcdserver: no leader"}
            for path in ("/health", "/livez", "/readyz", "/readyz?exclude=linearizable_read", "/readyz/non_learner",
                         "/readyz/linearizable_read"):
                async with s.get(base + path) as r:
                    out.append((r.status, await r.text()))
        return out

    out = asyncio.run(_with_gateway(kit.FakeEtcd().api, info, go))
    assert out[0] == (200, '{"health":"true","reason":""}')
    assert info.seen[1] == (True, frozenset({"NOSPACE"})) and info.seen[0] == (False, frozenset())
    assert out[2] == (200, "ok\n")
    assert out[3] == (200, "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n")
    assert out[4] == (503, '{"health":"false","reason":"ALARM NOSPACE"}\n')
    assert out[5] == (200, "ok\n")
    assert out[6][0] == 503 and "[-]linearizable_read failed: etcdserver: no leader\n" in out[6][1]
    assert out[7] == (200, "ok\n")
    assert out[8] == (200, "ok\n")
    assert out[9] == (503, "[-]linearizable_read failed: etcdserver: no leader\n\n")


def test_unhealthy_health_body_matches_real_etcd_shape(real_etcd: Any) -> None:
    # real etcd: healthy body and headers, which our healthy case must equal
    r = requests.get(real_etcd.url + "/health", timeout=5)
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, '{"health":"true","reason":""}', "text/plain; charset=utf-8")
    assert requests.get(real_etcd.url + "/livez", timeout=5).status_code == 404  # 3.5.1 has no /livez


METRIC_NAMES = [
    "etcd_server_has_leader", "etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total", "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
    "etcd_server_version", "etcd_cluster_version", "etcd_server_is_leader", "etcd_server_id",
    "etcd_server_slow_apply_total", "etcd_server_quota_backend_bytes", "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_range_total",
    "etcd_mvcc_txn_total", "etcd_debugging_mvcc_keys_total", "etcd_debugging_mvcc_watcher_total",
    "etcd_debugging_mvcc_slow_watcher_total", "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds", "etcd_disk_backend_defrag_duration_seconds",
    "etcd_disk_backend_snapshot_duration_seconds", "etcd_network_client_grpc_received_bytes_total",
    "etcd_network_client_grpc_sent_bytes_total", "grpc_server_started_total", "grpc_server_handled_total",
    "process_resident_memory_bytes", "etcd_server_health_success", "etcd_server_health_failures",
    "os_fd_used", "etcd_mvcc_hash_duration_seconds", "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
]
PEER_METRICS = [  # only present in etcd with peers; checked on ours only
    "etcd_network_peer_sent_bytes_total", "etcd_network_peer_received_bytes_total",
    "etcd_network_peer_round_trip_time_seconds", "etcd_network_peer_sent_failures_total",
]


def _families(text: str) -> dict[str, tuple[str, list[str], set[str]]]:
    """name -> (type, label names of the first sample, le values)."""
    import re

    fams: dict[str, tuple[str, list[str], set[str]]] = {}
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, typ in types.items():
        les = set(re.findall(rf'^{name}_bucket{{.*?le="([^"]+)"', text, re.M))
        m = re.search(rf"^{name}(?:_bucket)?{{([^}}]*)}}", text, re.M)
        labels = sorted(kv.split("=")[0] for kv in m.group(1).split(",")) if m else []
        if typ == "histogram":
            labels = [x for x in labels if x != "le"]
        fams[name] = (typ, labels, les)
    return fams


def test_metrics_have_etcds_names_types_labels_and_buckets(real_etcd: Any, kit: Any) -> None:
    from kvetch.obs.metrics import METRICS

    METRICS.set_server_version("3.5.1")
    METRICS.set_cluster_version("3.5")
    METRICS.set_server_id(0x2E1259D415F2A040)
    for m in (METRICS.peer_sent_bytes, METRICS.peer_received_bytes, METRICS.peer_sent_failures):
        m.labels("8e9e05c52164694d").inc()
    METRICS.peer_rtt.labels("8e9e05c52164694d").observe(0.001)
    METRICS.init_grpc_methods([("unary", "etcdserverpb.KV", "Range")])

    async def go(base: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
            return r.status, r.headers["Content-Type"], await r.text()

    status, ctype, text = asyncio.run(_with_gateway(kit.FakeEtcd().api, kit.FakeInfo(), go))
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    ours = _families(text)
    # a write and a range so that etcd's grpc series exist
    requests.post(real_etcd.url + "/v3/kv/put", data='{"key":"YQ==","value":"Yg=="}', timeout=5)
    theirs = _families(requests.get(real_etcd.metrics_url + "/metrics", timeout=5).text)
    for name in METRIC_NAMES:
        assert name in theirs, f"{name} not in real etcd's /metrics"
        assert name in ours, f"{name} missing"
        assert ours[name] == theirs[name], name
    for name in PEER_METRICS:
        assert name in ours, f"{name} missing"
    assert ours["etcd_network_peer_sent_bytes_total"][1] == ["To"]
    assert ours["etcd_network_peer_received_bytes_total"][1] == ["From"]


def test_watch_handler_is_cancelled_when_the_http_client_leaves(kit: Any) -> None:
    fake = kit.FakeEtcd()

    async def go(base: str) -> None:
        async with aiohttp.ClientSession() as s:
            resp = await s.post(base + "/v3/watch", data='{"create_request":{"key":"YQ=="}}')
            assert json.loads(await asyncio.wait_for(resp.content.readline(), 10))["result"]["created"]
            deadline = asyncio.get_running_loop().time() + 10
            while not fake.watchers:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            resp.close()  # drop the connection
        deadline = asyncio.get_running_loop().time() + 10
        while fake.watchers:  # the handler's finally blocks ran
            assert asyncio.get_running_loop().time() < deadline, "watch handler still running"
            await asyncio.sleep(0.01)

    asyncio.run(_with_gateway(fake.api, kit.FakeInfo(), go))


def test_watch_over_websocket(kit: Any) -> None:
    fake = kit.FakeEtcd()

    async def go(base: str) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.ws_connect(base + "/v3/watch") as ws:
            await ws.send_str('{"create_request":{"key":"YQ=="}}')
            got = [json.loads(await asyncio.wait_for(ws.receive_str(), 10))]
            async with s.post(base + "/v3/kv/put", data='{"key":"YQ==","value":"Yg=="}') as r:
                assert r.status == 200
            got.append(json.loads(await asyncio.wait_for(ws.receive_str(), 10)))
            return got

    created, event = asyncio.run(_with_gateway(fake.api, kit.FakeInfo(), go))
    assert created["result"]["created"] is True
    assert event["result"]["events"][0]["kv"] == {"key": "YQ==", "create_revision": "2", "mod_revision": "2",
                                                  "version": "1", "value": "Yg=="}


def test_pre_encoded_responses_are_rendered(kit: Any) -> None:
    async def status(req: pb.StatusRequest) -> bytes:
        return pb.StatusResponse(version="3.5.1", dbSize=24576).SerializeToString()

    async def stream(req: pb.SnapshotRequest) -> Any:
        yield pb.SnapshotResponse(remaining_bytes=1, blob=b"ab").SerializeToString()

    api = API()
    api.add(Method("/etcdserverpb.Maintenance/Status", pb.StatusRequest, pb.StatusResponse, "unary", status))
    api.add(Method("/etcdserverpb.Maintenance/Snapshot", pb.SnapshotRequest, pb.SnapshotResponse, "server_stream", stream))

    async def go(base: str) -> tuple[str, str]:
        async with aiohttp.ClientSession() as s:
            async with s.post(base + "/v3/maintenance/status", data="{}") as r:
                a = await r.text()
            async with s.post(base + "/v3/maintenance/snapshot", data="{}") as r:
                b = await r.text()
        return a, b

    a, b = asyncio.run(_with_gateway(api, kit.FakeInfo(), go))
    assert a == '{"version":"3.5.1","dbSize":"24576"}'
    assert b == '{"result":{"remaining_bytes":"1","blob":"YWI="}}\n'


def test_probes_fall_back_to_health_when_the_server_has_no_run_check(kit: Any) -> None:
    class HealthOnly:
        def __init__(self) -> None:
            self.answer = (True, "")

        def versions(self) -> dict[str, str]:
            return {}

        async def health(self, *, serializable: bool, exclude: frozenset[str]) -> tuple[bool, str]:
            if "CORRUPT" not in exclude and self.answer[1] == "ALARM CORRUPT":
                return self.answer
            return (True, "") if self.answer[1] == "ALARM CORRUPT" else self.answer

    info = HealthOnly()

    async def go(base: str) -> list[tuple[int, str]]:
        out = []
        async with aiohttp.ClientSession() as s:
            for answer in ((True, ""), (False, "ALARM CORRUPT"), (False, "RANGE ERROR:etcdserver: no leader")):
                info.answer = answer
                async with s.get(base + "/readyz") as r:
                    out.append((r.status, await r.text()))
        return out

    ok, corrupt, noleader = asyncio.run(_with_gateway(kit.FakeEtcd().api, info, go))
    assert ok == (200, "ok\n")
    assert corrupt[0] == 503 and "[-]data_corruption failed: alarm activated: CORRUPT\n" in corrupt[1]
    assert "[+]serializable_read ok" in corrupt[1]
    assert noleader[0] == 503 and "[-]linearizable_read failed: RANGE ERROR:etcdserver: no leader\n" in noleader[1]


def test_observe_hook_sees_every_finished_call(kit: Any) -> None:
    fake = kit.FakeEtcd()
    seen: list[tuple[str, str]] = []

    async def go(base: str) -> None:
        async with aiohttp.ClientSession() as s:
            for path, body in (("/v3/kv/put", '{"key":"YQ=="}'), ("/v3/kv/put", "{}"),
                               ("/v3/maintenance/snapshot", "{}")):
                async with s.post(base + path, data=body) as r:
                    await r.read()

    asyncio.run(_with_gateway(fake.api, kit.FakeInfo(), go,
                              observe=lambda m, code: seen.append((m.name, code.name))))
    assert seen == [("Put", "OK"), ("Put", "INVALID_ARGUMENT"), ("Snapshot", "UNAVAILABLE")]


def test_interactive_stream_requests_are_handled_as_they_arrive(kit: Any) -> None:
    fake = kit.FakeEtcd()

    async def go(base: str) -> list[dict[str, Any]]:
        outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def body() -> Any:
            while (chunk := await outbox.get()) is not None:
                yield chunk

        async with aiohttp.ClientSession() as s:
            async with s.post(base + "/v3/lease/grant", data='{"TTL":30,"ID":11}') as r:
                assert r.status == 200
            outbox.put_nowait(b'{"ID":')  # a request split across chunks
            outbox.put_nowait(b'11}')
            async with s.post(base + "/v3/lease/keepalive", data=body()) as r:
                first = json.loads(await asyncio.wait_for(r.content.readline(), 10))
                outbox.put_nowait(b'\n{"ID":"12"}\n')  # sent only after the first answer arrived
                second = json.loads(await asyncio.wait_for(r.content.readline(), 10))
                outbox.put_nowait(None)
                return [first, second]

    first, second = asyncio.run(_with_gateway(fake.api, kit.FakeInfo(), go))
    assert (first["result"]["ID"], first["result"]["TTL"]) == ("11", "30")
    assert second["result"]["ID"] == "12" and "TTL" not in second["result"]


def test_debug_vars_like_etcd(real_etcd: Any, kit: Any) -> None:
    info = kit.FakeInfo()
    status = {"id": "2e1259d415f2a040", "term": 2, "vote": "2e1259d415f2a040", "commit": 37,
              "lead": "2e1259d415f2a040", "raftState": "StateLeader", "applied": 37,
              "progress": {"2e1259d415f2a040": {"match": 37, "next": 38, "state": "StateReplicate"}},
              "leadtransferee": "0"}
    info.debug_vars = lambda: {"raft.status": status}

    async def go(base: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as s, s.get(base + "/debug/vars") as r:
            return r.status, r.headers["Content-Type"], await r.text()

    code, ctype, text = asyncio.run(_with_gateway(kit.FakeEtcd().api, info, go))
    theirs = requests.get(real_etcd.url + "/debug/vars", timeout=5)
    assert (code, ctype) == (theirs.status_code, theirs.headers["Content-Type"])
    ours_obj, their_obj = json.loads(text), theirs.json()
    assert set(ours_obj) == set(their_obj) - {"memstats"}
    assert ours_obj["raft.status"].keys() == their_obj["raft.status"].keys()
    # same layout: one top-level key per line, compact values
    assert text.startswith('{\n"cmdline": [') and text.endswith("}\n")
    assert theirs.text.startswith('{\n"cmdline": [') and theirs.text.endswith("}\n")
