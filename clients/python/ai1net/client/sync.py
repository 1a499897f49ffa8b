"""``Client``: the whole AI1NET gRPC API from ordinary (blocking) Python code."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from time import sleep
from types import TracebackType
from typing import Any, TypeVar

import grpc

from ai1net.client import calls
from ai1net.client.base import ClientBase, serialize
from ai1net.client.calls import UNSET, Call, Time, Timeout, Unset
from ai1net.client.channels import StrPath
from ai1net.client.errors import from_rpc_error
from ai1net.client.results import (
    Generation,
    Key,
    Model,
    RateLimit,
    Reconciliation,
    StreamEvent,
    UsageSummary,
)
from ai1net.client.retry import RetryPolicy

R = TypeVar("R")


class Client(ClientBase):
    """``with Client("127.0.0.1:50051", api_key=key) as client: client.generate("Hi")``.

    Safe to share between threads. Every method raises an ``Ai1netError`` subclass on
    failure and takes ``timeout`` (seconds) to override the client's.
    """

    def __init__(self, target: str | None = None, *, api_key: str, tls: bool = False,
                 ca_file: StrPath | None = None, cert_file: StrPath | None = None,
                 key_file: StrPath | None = None, timeout: float | None = 60.0,
                 retry: RetryPolicy | None = None, options: Sequence[tuple[str, Any]] = (),
                 channel: grpc.Channel | None = None) -> None:
        super().__init__(target, api_key=api_key, tls=tls, ca_file=ca_file,
                         cert_file=cert_file, key_file=key_file, timeout=timeout,
                         retry=retry, options=options, channel=channel)
        self._owns_channel = channel is None
        self._channel = channel or self._open()

    def _open(self) -> grpc.Channel:
        if self._credentials is None:
            return grpc.insecure_channel(self._target, options=self._options)
        return grpc.secure_channel(self._target, self._credentials, options=self._options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel (one passed in stays open: its owner closes it)."""
        if self._owns_channel:
            self._channel.close()

    # -- generate ---------------------------------------------------------------------------

    def generate(self, input: str, *, model: str | None = None,
                 parameters: Mapping[str, Any] | None = None,
                 routing: Mapping[str, Any] | None = None, fallbacks: Sequence[str] = (),
                 timeout: Timeout = UNSET) -> Generation:
        """Call ``model``, or the model routing picks (``routing`` as in the HTTP body)."""
        request = calls.generate_request(input, model=model, parameters=parameters,
                                         routing=routing, fallbacks=fallbacks)
        return self._unary(calls.generate(request), timeout)

    def generate_stream(self, input: str, *, model: str | None = None,
                        parameters: Mapping[str, Any] | None = None,
                        routing: Mapping[str, Any] | None = None,
                        fallbacks: Sequence[str] = (),
                        timeout: Timeout = UNSET) -> Iterator[StreamEvent]:
        """``Delta`` events (or one ``Output``), then ``Done``; leaving the loop early
        cancels the call and the provider's."""
        request = calls.generate_request(input, model=model, parameters=parameters,
                                         routing=routing, fallbacks=fallbacks)
        return self._stream(calls.generate_stream(request), timeout)

    # -- registry ---------------------------------------------------------------------------

    def register_model(self, spec: Mapping[str, Any], *, timeout: Timeout = UNSET) -> Model:
        """``spec`` reads like the body of ``POST /v1/models``."""
        return self._unary(calls.register_model(spec), timeout)

    def get_model(self, name: str, *, timeout: Timeout = UNSET) -> Model:
        return self._unary(calls.get_model(name), timeout)

    def list_models(self, *, type: str = "", capability: str = "", specialty: str = "",
                    page_size: int = 0, timeout: Timeout = UNSET) -> list[Model]:
        """Every model matching the filters (an empty filter matches all), page by page."""
        models: list[Model] = []
        token = ""
        while True:
            page, token = self._unary(calls.list_models(
                type=type, capability=capability, specialty=specialty, page_size=page_size,
                page_token=token), timeout)
            models.extend(page)
            if not token:
                return models

    def update_model(self, name: str, changes: Mapping[str, Any], *,
                     timeout: Timeout = UNSET) -> Model:
        """Change only the fields given, e.g. ``{"pricing": {"input_per_1k_tokens": 0.001}}``."""
        return self._unary(calls.update_model(name, changes), timeout)

    def delete_model(self, name: str, *, timeout: Timeout = UNSET) -> None:
        self._unary(calls.delete_model(name), timeout)

    # -- keys (admin) -----------------------------------------------------------------------

    def create_key(self, role: str, *, name: str = "", rate_limit: RateLimit | None = None,
                   budget_usd: float | None = None, timeout: Timeout = UNSET) -> Key:
        """A new key; its secret is in ``.key``, this once."""
        return self._unary(calls.create_key(role, name=name, rate_limit=rate_limit,
                                            budget_usd=budget_usd), timeout)

    def list_keys(self, *, include_revoked: bool = False,
                  timeout: Timeout = UNSET) -> list[Key]:
        return self._unary(calls.list_keys(include_revoked=include_revoked), timeout)

    def update_key(self, id: str, *, name: str | None = None,
                   rate_limit: RateLimit | None = None,
                   budget_usd: float | Unset | None = UNSET, timeout: Timeout = UNSET) -> Key:
        """Change what is given; ``budget_usd=None`` removes the budget."""
        return self._unary(calls.update_key(id, name=name, rate_limit=rate_limit,
                                            budget_usd=budget_usd), timeout)

    def revoke_key(self, id: str, *, timeout: Timeout = UNSET) -> None:
        self._unary(calls.revoke_key(id), timeout)

    # -- usage ------------------------------------------------------------------------------

    def usage(self, *, model: str = "", group_by: str = "", start: Time = None,
              end: Time = None, timeout: Timeout = UNSET) -> UsageSummary:
        """Totals in the caller's scope; ``group_by`` is model, key, hour or day."""
        return self._unary(calls.get_usage(model=model, group_by=group_by, start=start,
                                           end=end), timeout)

    def report_usage(self, model: str, *, start: Time, end: Time, requests: int,
                     tokens_processed: int, timeout: Timeout = UNSET) -> str:
        """A provider's own count for one of its models; returns the report's id."""
        return self._unary(calls.report_usage(model, start=start, end=end, requests=requests,
                                              tokens_processed=tokens_processed), timeout)

    def reconciliation(self, model: str, *, start: Time = None, end: Time = None,
                       timeout: Timeout = UNSET) -> Reconciliation:
        return self._unary(calls.get_reconciliation(model, start=start, end=end), timeout)

    # -- carrying calls out -----------------------------------------------------------------

    def _unary(self, call: Call[R], timeout: Timeout) -> R:
        invoke = self._channel.unary_unary(call.method.path, request_serializer=serialize,
                                           response_deserializer=call.method.reply.FromString)
        deadline = self._deadline(timeout)
        for attempt in itertools.count():
            try:
                reply = invoke(call.request, timeout=deadline.remaining(),
                               metadata=self._metadata)
            except grpc.RpcError as exc:
                error, wait = self._failed(call, attempt, exc, deadline)
                if wait is None:
                    raise error from exc
                sleep(wait)
            else:
                return call.convert(reply)
        raise AssertionError("unreachable")

    def _stream(self, call: Call[R], timeout: Timeout) -> Iterator[R]:
        invoke = self._channel.unary_stream(call.method.path, request_serializer=serialize,
                                            response_deserializer=call.method.reply.FromString)
        # Both an iterator of replies and the grpc.Call that cancels them.
        replies: Any = invoke(call.request, timeout=self._deadline(timeout).remaining(),
                              metadata=self._metadata)
        try:
            for reply in replies:
                yield call.convert(reply)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        finally:
            replies.cancel()
