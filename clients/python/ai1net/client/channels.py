"""Opening a channel to the gateway: in clear or over TLS, with the client's identity."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from ai1net.client.version import __version__

DEFAULT_TARGET = "127.0.0.1:50051"
StrPath = str | os.PathLike[str]
Metadata = tuple[tuple[str, str], ...]


def credentials(*, tls: bool, ca_file: StrPath | None, cert_file: StrPath | None,
                key_file: StrPath | None) -> grpc.ChannelCredentials | None:
    """TLS credentials (system roots unless ``ca_file``), or None for a channel in clear.

    A CA file or a client certificate implies TLS; a client certificate (for a gateway
    started with ``--tls-client-ca``) needs its key.
    """
    if (cert_file is None) != (key_file is None):
        raise ValueError("cert_file and key_file go together")
    if not (tls or ca_file is not None or cert_file is not None):
        return None
    return grpc.ssl_channel_credentials(root_certificates=_read(ca_file),
                                        private_key=_read(key_file),
                                        certificate_chain=_read(cert_file))


def options(extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [("grpc.primary_user_agent", f"ai1net-client/{__version__}"), *extra]


def auth_metadata(api_key: str) -> Metadata:
    if not api_key:
        raise ValueError("api_key is required")
    return (("authorization", f"Bearer {api_key}"),)


def _read(path: StrPath | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()
