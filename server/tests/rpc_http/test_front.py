"""gRPC and HTTP/1.x on one client port: the sniffing front with a real grpc.aio server behind it.

The gRPC side is real: grpc.aio serving the standard health service and a
bytes echo service on a unix socket, called by real grpc.aio clients through
the front. The HTTP side is the gateway over ``FakeEtcd`` (conftest, a
unit-level in-memory stand-in for the server).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from kvetch.rpc.front import H2_PREFACE, serve_client_port, serve_http, serve_metrics
from kvetch.rpc.gateway import build_gateway_app


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    """Run a coroutine on the default loop or on uvloop (the server may run on either)."""
    if request.param == "uvloop":
        import uvloop

        def go(coro: Any) -> Any:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
                return r.run(coro)

        return go
    return asyncio.run


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _echo_stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for r in requests:
        yield r


def _echo_service() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo),
            "Stream": grpc.stream_stream_rpc_method_handler(_echo_stream),
        },
    )


async def _grpc_server(target: str) -> grpc.aio.Server:
    srv = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                   ("grpc.max_send_message_length", 64 << 20)])
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), srv)
    srv.add_generic_rpc_handlers([_echo_service()])
    srv.add_insecure_port(target)
    await srv.start()
    return srv


def _channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
    )


async def _with_front(tmp_path: Path, kit: Any, body: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    target = f"unix:{tmp_path}/grpc.sock"
    srv = await _grpc_server(target)
    fake = kit.FakeEtcd()
    front = await serve_client_port("127.0.0.1", 0, target, build_gateway_app(fake.api, kit.FakeInfo()))
    try:
        return await body(front, fake)
    finally:
        await front.close()
        await srv.stop(0)


def test_grpc_and_http_clients_share_the_port_concurrently(tmp_path: Path, kit: Any, run: Any) -> None:
    async def body(front: Any, fake: Any) -> None:
        base = f"http://127.0.0.1:{front.port}"
        async with _channel(front.port) as ch, aiohttp.ClientSession() as http:
            check = health_pb2_grpc.HealthStub(ch).Check
            echo = ch.unary_unary("/test.Echo/Echo")

            async def grpc_call(i: int) -> None:
                assert (await check(health_pb2.HealthCheckRequest())).status == health_pb2.HealthCheckResponse.SERVING
                payload = bytes([i % 256]) * (1 + i * 5000)
                assert await echo(payload) == payload

            async def http_call(i: int) -> None:
                async with http.post(base + "/v3/kv/put", data=json.dumps({"key": "a2V5", "value": "dg=="})) as r:
                    assert r.status == 200
                async with http.get(base + "/version") as r:
                    assert await r.json() == {"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}

            await asyncio.gather(*(grpc_call(i) for i in range(40)), *(http_call(i) for i in range(40)))
        assert fake.rev == 41

    run(_with_front(tmp_path, kit, body))


def test_large_messages_and_streams_cross_the_relay_intact(tmp_path: Path, kit: Any, run: Any) -> None:
    async def body(front: Any, fake: Any) -> None:
        async with _channel(front.port) as ch:
            big = bytes(range(256)) * (12 * 4096)  # 12 MiB: many times the transports' buffers
            assert await ch.unary_unary("/test.Echo/Echo")(big) == big
            call = ch.stream_stream("/test.Echo/Stream")()
            sent = [bytes([i]) * 65536 for i in range(200)]

            async def writer() -> None:
                for m in sent:
                    await call.write(m)
                await call.done_writing()

            w = asyncio.create_task(writer())
            got = [m async for m in call]
            await w
            assert got == sent

    run(_with_front(tmp_path, kit, body))


async def _raw(port: int, chunks: list[bytes], read: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for c in chunks:
            writer.write(c)
            await writer.drain()
            await asyncio.sleep(0.02)  # let the front see a partial prefix (not a synchronisation)
        return await asyncio.wait_for(reader.readexactly(read), 10)
    finally:
        writer.close()


def test_sniffing_copes_with_prefixes_split_across_packets(tmp_path: Path, kit: Any, run: Any) -> None:
    async def body(front: Any, fake: Any) -> None:
        # HTTP/2 preface in three pieces: the server answers with an HTTP/2 SETTINGS frame
        frame = await _raw(front.port, [b"PRI * HTTP", b"/2.0\r\n\r\nS", b"M\r\n\r\n" + bytes.fromhex("000000040000000000")], 9)
        assert frame[3] == 0x04  # SETTINGS
        # HTTP/1.1 request whose first packet is a single byte
        head = await _raw(front.port, [b"G", b"ET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], 15)
        assert head == b"HTTP/1.1 200 OK"
        # "P" is a prefix of both PRI and POST
        req = b'POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{"key":"YQ=="}'
        assert await _raw(front.port, [req[:1], req[1:3], req[3:]], 15) == b"HTTP/1.1 200 OK"
        # garbage then close does not disturb later clients
        _r, w = await asyncio.open_connection("127.0.0.1", front.port)
        w.write(b"\x00\x01")
        w.close()
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{front.port}/health") as resp:
            assert resp.status == 200

    run(_with_front(tmp_path, kit, body))


def test_http_watch_stream_through_the_front_while_grpc_runs(tmp_path: Path, kit: Any, run: Any) -> None:
    async def body(front: Any, fake: Any) -> None:
        base = f"http://127.0.0.1:{front.port}"
        async with (
            aiohttp.ClientSession() as http,
            _channel(front.port) as ch,
            http.post(base + "/v3/watch", data='{"create_request":{"key":"dw=="}}') as w,
        ):
            created = json.loads(await asyncio.wait_for(w.content.readline(), 10))
            assert created["result"]["created"] is True
            echo = ch.unary_unary("/test.Echo/Echo")
            for i in range(20):
                assert await echo(b"x" * i) == b"x" * i
            async with http.post(base + "/v3/kv/put", data='{"key":"dw==","value":"MQ=="}') as r:
                assert r.status == 200
            ev = json.loads(await asyncio.wait_for(w.content.readline(), 10))
            assert ev["result"]["events"][0]["kv"]["value"] == "MQ=="

    run(_with_front(tmp_path, kit, body))


def test_close_stops_listening_and_drops_relayed_connections(tmp_path: Path, kit: Any, run: Any) -> None:
    async def go() -> None:
        target = f"unix:{tmp_path}/grpc.sock"
        srv = await _grpc_server(target)
        front = await serve_client_port("127.0.0.1", 0, target, build_gateway_app(kit.FakeEtcd().api, kit.FakeInfo()))
        port = front.port
        try:
            async with _channel(port) as ch:
                call = ch.stream_stream("/test.Echo/Stream")()
                await call.write(b"one")
                assert await call.read() == b"one"
                await front.close()
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await asyncio.wait_for(call.read(), 10)
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        finally:
            await srv.stop(0)

    run(go())


def test_unreachable_grpc_backend_fails_grpc_only(tmp_path: Path, kit: Any, run: Any) -> None:
    async def go() -> None:
        front = await serve_client_port(
            "127.0.0.1", 0, f"unix:{tmp_path}/nobody.sock", build_gateway_app(kit.FakeEtcd().api, kit.FakeInfo())
        )
        try:
            async with _channel(front.port) as ch:
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await ch.unary_unary("/test.Echo/Echo")(b"x", timeout=5)
                assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{front.port}/version") as r:
                assert r.status == 200
        finally:
            await front.close()

    run(go())


def test_separate_http_and_metrics_listeners(tmp_path: Path, kit: Any, run: Any) -> None:
    async def go() -> None:
        info = kit.FakeInfo()
        http_srv = await serve_http("127.0.0.1", 0, build_gateway_app(kit.FakeEtcd().api, info))
        metrics_srv = await serve_metrics("127.0.0.1", 0, info)
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(f"http://127.0.0.1:{http_srv.port}/v3/kv/range", data='{"key":"YQ=="}') as r:
                    assert r.status == 200
                m = f"http://127.0.0.1:{metrics_srv.port}"
                async with s.get(m + "/metrics") as r:
                    assert r.status == 200 and "etcd_server_has_leader" in await r.text()
                async with s.get(m + "/health") as r:
                    assert (r.status, await r.text()) == (200, '{"health":"true","reason":""}')
                async with s.post(m + "/v3/kv/range", data="{}") as r:
                    assert r.status == 404
        finally:
            await http_srv.close()
            await metrics_srv.close()

    run(go())


def _self_signed(tmp_path: Path) -> tuple[Path, Path, bytes]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kvetch-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    certf, keyf = tmp_path / "server.crt", tmp_path / "server.key"
    certf.write_bytes(pem)
    keyf.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return certf, keyf, pem


def test_tls_client_port_serves_grpc_and_https(tmp_path: Path, kit: Any, run: Any) -> None:
    import ssl

    certf, keyf, pem = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certf, keyf)
    client_ctx = ssl.create_default_context(cadata=pem.decode())

    async def go() -> None:
        target = f"unix:{tmp_path}/grpc.sock"
        srv = await _grpc_server(target)
        front = await serve_client_port("127.0.0.1", 0, target, build_gateway_app(kit.FakeEtcd().api, kit.FakeInfo()),
                                        ssl=server_ctx)
        try:
            creds = grpc.ssl_channel_credentials(root_certificates=pem)
            async with grpc.aio.secure_channel(f"127.0.0.1:{front.port}", creds) as ch:
                payload = b"z" * 300_000
                assert await ch.unary_unary("/test.Echo/Echo")(payload) == payload
                resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
                assert resp.status == health_pb2.HealthCheckResponse.SERVING
            async with aiohttp.ClientSession() as s, s.post(
                f"https://127.0.0.1:{front.port}/v3/kv/put", data='{"key":"YQ==","value":"Yg=="}', ssl=client_ctx
            ) as r:
                assert r.status == 200 and (await r.json())["header"]["revision"] == "2"
            # plaintext on the TLS port is refused
            async with aiohttp.ClientSession() as s:
                with pytest.raises(aiohttp.ClientError):
                    async with s.get(f"http://127.0.0.1:{front.port}/version") as r:
                        await r.read()
        finally:
            await front.close()
            await srv.stop(0)

    run(go())


def test_client_half_close_is_forwarded_to_the_grpc_server(tmp_path: Path, kit: Any, run: Any) -> None:
    async def body(front: Any, fake: Any) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(H2_PREFACE + bytes.fromhex("000000040000000000"))  # preface + empty SETTINGS
        writer.write_eof()  # half-close: the gRPC server must see EOF and close
        frame = await asyncio.wait_for(reader.readexactly(9), 10)
        assert frame[3] == 0x04  # the gRPC server's SETTINGS came back
        rest = await asyncio.wait_for(reader.read(), 10)  # then the server closes (GOAWAY or plain EOF)
        assert isinstance(rest, bytes)
        writer.close()

    run(_with_front(tmp_path, kit, body))


def test_unix_socket_client_url_serves_grpc_and_http(tmp_path: Path, kit: Any, run: Any) -> None:
    async def go() -> None:
        target = f"unix:{tmp_path}/grpc.sock"
        srv = await _grpc_server(target)
        path = str(tmp_path / "client.sock")
        front = await serve_client_port("", 0, target, build_gateway_app(kit.FakeEtcd().api, kit.FakeInfo()),
                                        unix_path=path)
        try:
            async with grpc.aio.insecure_channel(f"unix:{path}") as ch:
                assert await ch.unary_unary("/test.Echo/Echo")(b"over unix") == b"over unix"
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as s, s.get(
                "http://localhost/version"
            ) as r:
                assert (await r.json())["etcdserver"] == "3.5.1"
        finally:
            await front.close()
            await srv.stop(0)

    run(go())
