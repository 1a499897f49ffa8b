"""KeyService: create, list, update and revoke API keys (admin only); any key reads its own."""

from __future__ import annotations

from typing import Any

from google.protobuf import empty_pb2
from grpc import aio

from ai1net.client.convert import timestamp
from ai1net.server.auth import current_principal, require_role
from ai1net.server.errors import InvalidArgument
from ai1net.server.keys import KEEP, KeyLimits, KeyStore, Principal, usd_to_nanos
from ai1net.server.money import nanos_to_usd
from ai1net.server.quota import Quota
from ai1net.v1 import keys_pb2, keys_pb2_grpc

Context = aio.ServicerContext[Any, Any]
MASKABLE = ("name", "rate_limit", "budget_usd")


class KeyServicer(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, *, keys: KeyStore, quota: Quota) -> None:
        self._keys = keys
        self._quota = quota

    async def CreateKey(self, request: keys_pb2.CreateKeyRequest,
                        context: Context) -> keys_pb2.Key:
        require_role("admin")
        principal, secret = await self._keys.create(
            role=request.role, name=request.name, limits=limits_from(request))
        answer = to_proto(principal)
        answer.key = secret
        return answer

    async def ListKeys(self, request: keys_pb2.ListKeysRequest,
                       context: Context) -> keys_pb2.ListKeysResponse:
        require_role("admin")
        keys = await self._keys.list(include_revoked=request.include_revoked)
        return keys_pb2.ListKeysResponse(keys=[to_proto(k) for k in keys])

    async def UpdateKey(self, request: keys_pb2.UpdateKeyRequest,
                        context: Context) -> keys_pb2.Key:
        require_role("admin")
        paths = set(request.update_mask.paths)
        if not paths <= set(MASKABLE):
            raise InvalidArgument("update_mask", f"may only name {', '.join(MASKABLE)}")
        asked = limits_from(request)
        rate_limit = (asked.requests_per_minute, asked.tokens_per_minute) \
            if "rate_limit" in paths else None
        principal = await self._keys.update(
            request.id, name=request.name if "name" in paths else None, rate_limit=rate_limit,
            budget_nanos=asked.budget_nanos if "budget_usd" in paths else KEEP)
        if "budget_usd" in paths:
            await self._quota.forget(request.id)  # spend is rebuilt from the ledger
        return to_proto(principal)

    async def RevokeKey(self, request: keys_pb2.RevokeKeyRequest,
                        context: Context) -> empty_pb2.Empty:
        require_role("admin")
        await self._keys.revoke(request.id)
        return empty_pb2.Empty()

    async def GetCurrentKey(self, request: keys_pb2.GetCurrentKeyRequest,
                            context: Context) -> keys_pb2.Key:
        principal = current_principal()
        answer = to_proto(principal)
        answer.spent_usd = nanos_to_usd(await self._quota.spent_nanos(principal.id))
        return answer


def limits_from(request: keys_pb2.CreateKeyRequest | keys_pb2.UpdateKeyRequest) -> KeyLimits:
    budget = usd_to_nanos(request.budget_usd, "budget_usd") \
        if request.HasField("budget_usd") else None
    return KeyLimits(requests_per_minute=request.rate_limit.requests_per_minute,
                     tokens_per_minute=request.rate_limit.tokens_per_minute,
                     budget_nanos=budget)


def to_proto(principal: Principal) -> keys_pb2.Key:
    key = keys_pb2.Key(
        id=principal.id, name=principal.name, role=principal.role, prefix=principal.prefix,
        rate_limit=keys_pb2.RateLimit(requests_per_minute=principal.requests_per_minute,
                                      tokens_per_minute=principal.tokens_per_minute),
        created_at=timestamp(principal.created_at), revoked=principal.revoked)
    if principal.budget_nanos is not None:
        key.budget_usd = nanos_to_usd(principal.budget_nanos)
    return key
