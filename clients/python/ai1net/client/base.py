"""What ``Client`` and ``AsyncClient`` share: their settings and the retry decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from ai1net.client import channels
from ai1net.client.calls import UNSET, Call, Timeout
from ai1net.client.channels import StrPath
from ai1net.client.errors import Ai1netError, from_rpc_error
from ai1net.client.retry import Deadline, RetryPolicy


class ClientBase:
    """Keyword arguments common to both clients.

    ``target`` is ``host:port`` (default ``127.0.0.1:50051``). ``tls=True`` verifies the
    gateway against the system's roots, ``ca_file`` against that CA instead; ``cert_file``
    and ``key_file`` present a client certificate. ``timeout`` (seconds, None for none) is
    each call's deadline unless the call names its own; ``retry`` governs reads only.
    ``channel`` brings a channel of your own (then give no target or TLS settings).
    """

    def __init__(self, target: str | None, *, api_key: str, tls: bool,
                 ca_file: StrPath | None, cert_file: StrPath | None, key_file: StrPath | None,
                 timeout: float | None, retry: RetryPolicy | None,
                 options: Sequence[tuple[str, Any]], channel: Any) -> None:
        self._metadata = channels.auth_metadata(api_key)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        if channel is not None and (target is not None or tls or ca_file or cert_file):
            raise ValueError("give either a channel or a target with its TLS settings")
        self._target = target or channels.DEFAULT_TARGET
        self._credentials = channels.credentials(tls=tls, ca_file=ca_file,
                                                 cert_file=cert_file, key_file=key_file)
        self._options = channels.options(options)

    def _deadline(self, timeout: Timeout) -> Deadline:
        return Deadline(self._timeout if timeout is UNSET else timeout)

    def _failed(self, call: Call[Any], attempt: int, exc: grpc.RpcError,
                deadline: Deadline) -> tuple[Ai1netError, float | None]:
        """The typed error, and how long to wait before trying again (None: raise it)."""
        error = from_rpc_error(exc)
        if not call.method.idempotent:
            return error, None
        return error, self._retry.delay(attempt, error, remaining=deadline.remaining())


def serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
