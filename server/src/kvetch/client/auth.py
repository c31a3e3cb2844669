"""The Auth API (the subset a client needs: status, enable/disable, users and roles)."""

from __future__ import annotations

from kvetch.api.etcdserverpb import rpc_pb2

from .transport import Transport


class Auth:
    """Auth administration calls."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def status(self, *, timeout: float | None = None) -> rpc_pb2.AuthStatusResponse:
        return await self._t.unary(
            "Auth/AuthStatus", rpc_pb2.AuthStatusRequest(), rpc_pb2.AuthStatusResponse, idempotent=True,
            timeout=timeout,
        )

    async def enable(self, *, timeout: float | None = None) -> rpc_pb2.AuthEnableResponse:
        return await self._t.unary(
            "Auth/AuthEnable", rpc_pb2.AuthEnableRequest(), rpc_pb2.AuthEnableResponse, idempotent=False,
            timeout=timeout,
        )

    async def disable(self, *, timeout: float | None = None) -> rpc_pb2.AuthDisableResponse:
        return await self._t.unary(
            "Auth/AuthDisable", rpc_pb2.AuthDisableRequest(), rpc_pb2.AuthDisableResponse, idempotent=False,
            timeout=timeout,
        )

    async def user_add(self, name: str, password: str, *, timeout: float | None = None) -> rpc_pb2.AuthUserAddResponse:
        req = rpc_pb2.AuthUserAddRequest(name=name, password=password)
        return await self._t.unary("Auth/UserAdd", req, rpc_pb2.AuthUserAddResponse, idempotent=False, timeout=timeout)

    async def user_grant_role(
        self, user: str, role: str, *, timeout: float | None = None
    ) -> rpc_pb2.AuthUserGrantRoleResponse:
        req = rpc_pb2.AuthUserGrantRoleRequest(user=user, role=role)
        return await self._t.unary(
            "Auth/UserGrantRole", req, rpc_pb2.AuthUserGrantRoleResponse, idempotent=False, timeout=timeout
        )

    async def role_add(self, name: str, *, timeout: float | None = None) -> rpc_pb2.AuthRoleAddResponse:
        req = rpc_pb2.AuthRoleAddRequest(name=name)
        return await self._t.unary("Auth/RoleAdd", req, rpc_pb2.AuthRoleAddResponse, idempotent=False, timeout=timeout)
