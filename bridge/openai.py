"""The OpenAI-compatible surface under ``/openai/v1`` (CONTRACT §6): thin handlers.

Each translates OpenAI's body (``openai_wire``) and calls the same GenerateService and
RegistryService as ``/v1``, through the same helpers: keys, limits, budgets, accounting,
routing, fallbacks, tracing and cancellation are those of ``/v1/generate``. Errors render
in OpenAI's shape (``errors.openai_envelope``, chosen by the app's middleware).
"""

from __future__ import annotations

import time

from aiohttp import web

from ai1net.bridge import openai_wire as wire
from ai1net.bridge.backend import BACKEND, call_metadata
from ai1net.bridge.errors import invalid
from ai1net.bridge.links import FETCHER, fetch_audio
from ai1net.bridge.routes import call_generate, json_response, open_stream, read_json
from ai1net.bridge.streaming import relay
from ai1net.v1 import registry_pb2

OPENAI_PREFIX = "/openai/v1"
MODELS_PAGE = 1000


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _text_answer(request, wire.chat_request(await read_json(request)), chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    asked = wire.completion_request(await read_json(request))
    return await _text_answer(request, asked, chat=False)


async def _text_answer(request: web.Request, asked: wire.Asked, *,
                       chat: bool) -> web.StreamResponse:
    created = int(time.time())
    if asked.stream:
        return await relay(request, open_stream(request, asked.message),
                           wire.ChunkFraming(asked, chat=chat, created=created))
    response, headers = await call_generate(request, asked.message)
    answer = wire.chat_json if chat else wire.completion_json
    return json_response(answer(response, asked, created), headers=headers)


async def image_generations(request: web.Request) -> web.Response:
    asked, b64 = wire.image_request(await read_json(request))
    await _check_type(request, asked, "image")
    response, headers = await call_generate(request, asked.message)
    return json_response(wire.images_json(response, b64=b64, created=int(time.time())),
                         headers=headers)


async def audio_speech(request: web.Request) -> web.Response:
    """The audio bytes: decoded from a ``data:`` URL, or fetched from a link."""
    asked = wire.speech_request(await read_json(request))
    await _check_type(request, asked, "audio")
    response, headers = await call_generate(request, asked.message)
    url = wire.audio_url(response)
    if url.startswith("data:"):
        media, audio = wire.data_url(url, "audio_url")
    else:
        model = await request.app[BACKEND].registry.GetModel(
            registry_pb2.GetModelRequest(name=response.model), metadata=call_metadata(request))
        media, audio = await fetch_audio(request.app[FETCHER], model, url)
    return web.Response(body=audio, content_type=media, headers=headers)


async def _check_type(request: web.Request, asked: wire.Asked, kind: str) -> None:
    """A named model must be of the endpoint's type: a 400 before anything is billed."""
    if not asked.message.model:
        return  # routed: the endpoint already asked for its type
    model = await request.app[BACKEND].registry.GetModel(
        registry_pb2.GetModelRequest(name=asked.message.model),
        metadata=call_metadata(request))
    if model.type != kind:
        raise invalid("model", f"{model.name} is a {model.type} model; this endpoint needs "
                      f"an {kind} model")


async def list_models(request: web.Request) -> web.Response:
    registry, metadata = request.app[BACKEND].registry, call_metadata(request)
    models, token = [], ""
    while True:
        page = await registry.ListModels(
            registry_pb2.ListModelsRequest(page_size=MODELS_PAGE, page_token=token),
            metadata=metadata)
        models += [wire.model_json(model) for model in page.models]
        if not (token := page.next_page_token):
            return json_response({"object": "list", "data": models})


async def get_model(request: web.Request) -> web.Response:
    model = await request.app[BACKEND].registry.GetModel(
        registry_pb2.GetModelRequest(name=request.match_info["id"]),
        metadata=call_metadata(request))
    return json_response(wire.model_json(model))


def add_openai_routes(app: web.Application) -> None:
    app.router.add_post(f"{OPENAI_PREFIX}/chat/completions", chat_completions)
    app.router.add_post(f"{OPENAI_PREFIX}/completions", completions)
    app.router.add_get(f"{OPENAI_PREFIX}/models", list_models)
    app.router.add_get(f"{OPENAI_PREFIX}/models/{{id}}", get_model)
    app.router.add_post(f"{OPENAI_PREFIX}/images/generations", image_generations)
    app.router.add_post(f"{OPENAI_PREFIX}/audio/speech", audio_speech)
