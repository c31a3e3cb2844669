"""TLS to the client port: a self-signed certificate for 127.0.0.1, trusted through ``TLS(ca=...)``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from kvetch.client import TLS, Client, errors

from .conftest import Member, free_port


def test_tls_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    (tmp_path / "m").mkdir()
    m = Member("tls", tmp_path / "m" / "data", free_port(), free_port(), client_scheme="https",
               extra=["--cert-file", str(cert), "--key-file", str(key)])
    m.ca_pem = cert.read_bytes()
    m.start()
    try:
        m.wait_ready()

        async def main() -> None:
            async with Client([f"https://{m.endpoint}"], timeout=5, tls=TLS.from_files(str(cert))) as c:
                await c.put("k", "v")
                assert (await c.get("k")).kvs[0].value == b"v"
            async with Client([m.endpoint], timeout=2, dial_timeout=0.5) as plain:
                with pytest.raises(errors.EtcdError):
                    await plain.get("k")

        asyncio.run(main())
    finally:
        m.stop()
