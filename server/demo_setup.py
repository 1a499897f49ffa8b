"""``ai1net serve --demo``: the demo provider started beside the gateway, its models
registered, and a consumer key minted (imported only then)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ai1net.demo import provider as demo_provider
from ai1net.server.app import Gateway
from ai1net.server.keys import KeyLimits
from ai1net.server.registry import ModelChanges
from ai1net.server.settings import Settings


@dataclass(frozen=True, slots=True)
class DemoModel:
    name: str
    type: str
    path: str  # on the demo provider; its query string makes it slow (delay_ms)
    capabilities: tuple[str, ...]
    price_in: float
    price_out: float
    latency_ms: float = 50
    accuracy: float = 0.8
    efficiency: str = "high"


# Three text models that differ in price, quality and speed, so routing has a choice.
DEMO_MODELS = (
    DemoModel("demo-text", "text", "/v1/generate", ("chat", "completion", "coding"),
              0.002, 0.004),
    DemoModel("demo-text-premium", "text", "/v1/generate?delay_ms=300",
              ("chat", "completion", "coding"), 0.01, 0.03, latency_ms=300, accuracy=0.95,
              efficiency="low"),
    DemoModel("demo-text-budget", "text", "/v1/generate?delay_ms=120", ("chat", "completion"),
              0.0002, 0.0004, latency_ms=120, accuracy=0.6),
    DemoModel("demo-image", "image", "/image/v1/generate", ("image-generation",), 0.01, 0.02),
    DemoModel("demo-audio", "audio", "/audio/v1/generate", ("text-to-speech",), 0.005, 0.01),
)



async def set_up_demo(gateway: Gateway, settings: Settings, *, grpc_target: str,
                      http_port: int) -> tuple[web.AppRunner, str]:
    """Start the demo provider, (re)register its models, and mint a consumer key; the
    banner names the addresses listened on (``http_port`` 0: no bridge)."""
    provider, port = await demo_provider.start(host="127.0.0.1", port=0)
    keys = await gateway.keys.list()
    owner = next((k for k in keys if k.name == "demo-provider" and k.role == "provider"), None)
    if owner is None:
        owner, _ = await gateway.keys.create(role="provider", name="demo-provider",
                                             limits=KeyLimits())
    for demo in DEMO_MODELS:
        changes = ModelChanges(
            name=demo.name, type=demo.type, endpoint=f"http://127.0.0.1:{port}{demo.path}",
            auth_type="none", input_per_1k_tokens=demo.price_in,
            output_per_1k_tokens=demo.price_out, capabilities=list(demo.capabilities),
            avg_latency_ms=demo.latency_ms, accuracy_score=demo.accuracy,
            cost_efficiency=demo.efficiency, specialties=["demos"],
            description="bundled demo model")
        if gateway.registry.find(demo.name) is None:
            await gateway.registry.register(owner, changes)
        else:
            await gateway.registry.update(owner, demo.name, ModelChanges(
                endpoint=changes.endpoint, enabled=True))
    _, secret = await gateway.keys.create(role="consumer", name="demo-consumer",
                                          limits=KeyLimits())
    host = settings.http_addr.rsplit(":", 1)[0].replace("0.0.0.0", "127.0.0.1")  # noqa: S104
    http = f"{host}:{http_port}"
    body = '{"model": "demo-text", "input": "Explain quantum computing in simple terms"}'
    banner = (
        f"\nAI1NET demo is up: HTTP http://{http}  gRPC {grpc_target}\n"
        f"demo provider on http://127.0.0.1:{port} with models "
        f"{', '.join(m.name for m in DEMO_MODELS)}\n"
        f"consumer key (shown once): {secret}\n"
        f"web console: http://{http}/console (sign in with that key)\n\n"
        f"curl -s http://{http}/v1/generate -H 'Authorization: Bearer {secret}' "
        f"-H 'Content-Type: application/json' "
        f"-d '{body}'\n")
    return provider, banner
