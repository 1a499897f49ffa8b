"""TLS from files: the contexts and credentials the two listeners (aiohttp, grpc.aio) and
the gRPC clients (the bridge run apart, the CLI) need. A file that cannot be read or used
is a ValueError naming the setting."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc


def read_file(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror}") from exc


def server_ssl_context(*, cert: str, key: str) -> ssl.SSLContext:
    """The HTTP listener's context (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"AI1NET_TLS_CERT / AI1NET_TLS_KEY: cannot use {cert} and {key}: "
                         f"{exc}") from exc
    return context


def server_credentials(*, cert: str, key: str, client_ca: str | None,
                       ) -> grpc.ServerCredentials:
    """The gRPC listener's credentials; with ``client_ca``, client certificates it signed
    are required."""
    server_ssl_context(cert=cert, key=key)  # checks that the pair is usable, naming it
    return grpc.ssl_server_credentials(
        [(read_file(key, "AI1NET_TLS_KEY"), read_file(cert, "AI1NET_TLS_CERT"))],
        root_certificates=read_file(client_ca, "AI1NET_TLS_CLIENT_CA") if client_ca else None,
        require_client_auth=client_ca is not None)


def channel_credentials(*, ca_file: str | None = None, client_cert: str | None = None,
                        client_key: str | None = None) -> grpc.ChannelCredentials:
    """A client's credentials: the server verified against ``ca_file`` (default: the
    system's trust store), with a client certificate when one is given."""
    roots = read_file(ca_file, "AI1NET_CA_FILE") if ca_file else _system_roots()
    return grpc.ssl_channel_credentials(
        root_certificates=roots,
        private_key=read_file(client_key, "AI1NET_CLIENT_KEY") if client_key else None,
        certificate_chain=read_file(client_cert, "AI1NET_CLIENT_CERT") if client_cert else None)


def _system_roots() -> bytes | None:
    """The system's CA bundle (gRPC otherwise uses the one bundled with grpcio)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return None
