"""``Client``: the AI1NET gRPC API with plain-Python arguments and answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from google.protobuf import json_format
from grpc import aio

from ai1net.client.convert import value_to_python
from ai1net.v1 import (
    generate_pb2,
    generate_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
)


def to_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class Client:
    """An async client; ``async with Client("127.0.0.1:50051", api_key=...) as c``."""

    def __init__(self, target: str, *, api_key: str, timeout: float | None = 60.0) -> None:
        self._channel = aio.insecure_channel(target)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._timeout = timeout
        self.generate_stub = generate_pb2_grpc.GenerateServiceStub(self._channel)
        self.registry_stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self.keys_stub = keys_pb2_grpc.KeyServiceStub(self._channel)
        self.usage_stub = usage_pb2_grpc.UsageServiceStub(self._channel)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None,
                        ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(grace=None)

    def _request(self, input: str, model: str | None, parameters: dict[str, Any] | None,
                 routing: dict[str, Any] | None) -> generate_pb2.GenerateRequest:
        request = generate_pb2.GenerateRequest(input=input, model=model or "")
        if parameters:
            request.parameters.update(parameters)
        if routing:
            json_format.ParseDict(routing, request.routing)
        return request

    async def generate(self, input: str, *, model: str | None = None,
                       parameters: dict[str, Any] | None = None,
                       routing: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.generate_stub.Generate(
            self._request(input, model, parameters, routing), metadata=self._metadata,
            timeout=self._timeout)
        answer = to_dict(response)
        answer["output"] = value_to_python(response.output)
        return answer

    async def generate_stream(self, input: str, *, model: str | None = None,
                              parameters: dict[str, Any] | None = None,
                              routing: dict[str, Any] | None = None,
                              ) -> AsyncIterator[dict[str, Any]]:
        call = self.generate_stub.GenerateStream(
            self._request(input, model, parameters, routing), metadata=self._metadata,
            timeout=self._timeout)
        async for message in call:
            event = to_dict(message)
            if message.HasField("output"):
                event["output"] = value_to_python(message.output)
            yield event

    async def register_model(self, spec: dict[str, Any]) -> dict[str, Any]:
        request = registry_pb2.RegisterModelRequest()
        json_format.ParseDict(spec, request.model)
        return to_dict(await self.registry_stub.RegisterModel(
            request, metadata=self._metadata, timeout=self._timeout))

    async def list_models(self, *, type: str = "", capability: str = "",
                          specialty: str = "") -> list[dict[str, Any]]:
        """Every model matching the filters (an empty filter matches all), page by page."""
        models: list[dict[str, Any]] = []
        token = ""
        while True:
            page = await self.registry_stub.ListModels(
                registry_pb2.ListModelsRequest(type=type, capability=capability,
                                              specialty=specialty, page_token=token),
                metadata=self._metadata, timeout=self._timeout)
            models.extend(to_dict(m) for m in page.models)
            token = page.next_page_token
            if not token:
                return models

    async def get_model(self, name: str) -> dict[str, Any]:
        return to_dict(await self.registry_stub.GetModel(
            registry_pb2.GetModelRequest(name=name), metadata=self._metadata,
            timeout=self._timeout))

    async def delete_model(self, name: str) -> None:
        await self.registry_stub.DeleteModel(registry_pb2.DeleteModelRequest(name=name),
                                             metadata=self._metadata, timeout=self._timeout)

    async def create_key(self, role: str, name: str = "") -> dict[str, Any]:
        return to_dict(await self.keys_stub.CreateKey(
            keys_pb2.CreateKeyRequest(role=role, name=name), metadata=self._metadata,
            timeout=self._timeout))

    async def usage(self, *, model: str = "", group_by: str = "", start: str = "",
                    end: str = "") -> dict[str, Any]:
        request = usage_pb2.GetUsageRequest(model=model, group_by=group_by,
                                            **{"from": start, "to": end})
        return to_dict(await self.usage_stub.GetUsage(request, metadata=self._metadata,
                                                      timeout=self._timeout))
