"""Media a provider answered with as a link, fetched for callers that need the bytes (the
OpenAI surface's speech, CONTRACT §6): a GET through the provider transport — the gateway's
pool, SSRF guard, and the answering model's limits and time-outs — never with the model's
credentials (a link must work on its own, as a signed URL does)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ai1net.bridge.errors import HttpError, from_domain_error
from ai1net.server.errors import GatewayError
from ai1net.server.http1 import Limits
from ai1net.server.transport import ProviderRequest, Transport
from ai1net.v1 import registry_pb2

FETCHER = web.AppKey("fetcher", Transport)
DEFAULT_AUDIO_TYPE = "audio/mpeg"


async def fetch_audio(transport: Transport, model: registry_pb2.Model,
                      url: str) -> tuple[str, bytes]:
    """The media type (the answer's, else ``audio/mpeg``) and bytes at ``url``; a failure,
    a limit broken or an answer that is not 2xx is a 502, no answer in time a 504."""
    if not url.startswith(("http://", "https://")):
        raise HttpError(502, f"model {model.name} answered with output.audio_url that is "
                             f"neither a data: nor an http(s) URL")
    total = model.timeout_ms / 1000
    request = ProviderRequest(url=url, headers={"Accept": "audio/*, */*"}, body=b"",
                              first_byte_timeout=min(total, model.first_byte_timeout_ms / 1000),
                              limits=Limits(body_bytes=model.max_response_bytes))
    try:
        async with asyncio.timeout(total):
            async with transport.fetch(request) as answer:
                audio = await answer.read()
    except TimeoutError as exc:
        raise HttpError(504, f"the audio of model {model.name} did not arrive within "
                             f"{model.timeout_ms} ms") from exc
    except GatewayError as exc:
        error = from_domain_error(exc)
        error.message = f"fetching the audio of model {model.name}: {error.message}"
        raise error from exc
    if not 200 <= answer.status < 300:
        raise HttpError(502, f"fetching the audio of model {model.name}: its link answered "
                             f"HTTP {answer.status}")
    media = answer.headers.get("Content-Type", "").split(";", 1)[0].strip()
    return media or DEFAULT_AUDIO_TYPE, audio
