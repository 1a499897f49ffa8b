"""Screenshots of every console page, and how long each takes to become interactive.

    .venv/bin/python scripts/console_screenshots.py [--out docs/screenshots] [--events N]

Starts the demo provider and a gateway on a fresh SQLite file, makes a provider, a consumer
and some real calls, writes ``--events`` synthetic past calls through the ledger's own write
(spread over the last 30 days, roll-ups included, to see the charts and to time the pages on
a large ledger), then opens each page in headless Chromium at 1280 px (and a few at 390 px
and in dark mode). Prints, per page, the median time from navigation start to the page being
interactive (the console marks ``data-state="ready"`` once its data is drawn) over five
fresh loads.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ai1net.server.storage import Database  # noqa: E402
from ai1net.server.usage import Ledger, UsageEvent  # noqa: E402
from tests.conftest import (  # noqa: E402
    ADMIN_KEY,
    PostgresDatabase,
    bearer,
    gateway_settings,
    start_process,
    stop_process,
)
from tests.support.browser import Console, ThreadedGateway, chromium  # noqa: E402

PAGES = {"consumer": ["catalog", "playground", "spend"],
         "provider": ["mine", "earnings"],
         "admin": ["keys", "manage", "usage", "health", "audit"]}
MODELS = (("demo-text", "text", "/v1/generate", 0.002, 0.004, "General chat and coding"),
          ("demo-text-premium", "text", "/v1/generate?delay_ms=120", 0.01, 0.03,
           "Slower, careful answers"),
          ("demo-image", "image", "/image/v1/generate", 0.01, 0.02, "Draws a picture"),
          ("demo-audio", "audio", "/audio/v1/generate", 0.005, 0.01, "Speaks a short clip"))
DAY_MS = 86_400_000


def set_up(gateway: ThreadedGateway, provider_url: str) -> dict[str, str]:
    harness = gateway.harness
    keys = {"admin": ADMIN_KEY,
            "provider": gateway.call(harness.key("provider", "acme-models")),
            "consumer": gateway.call(harness.key("consumer", "alice", budget_usd=500.0,
                                                 rate_limit={"requests_per_minute": 600,
                                                             "tokens_per_minute": 200_000}))}
    for name, kind, path, price_in, price_out, description in MODELS:
        gateway.call(harness.register(
            keys["provider"], name=name, type=kind, endpoint=provider_url + path,
            auth_type="none", description=description,
            capabilities=["chat", "coding"] if kind == "text" else [f"{kind}-generation"],
            specialties=["demos"], cost_efficiency="medium",
            performance={"avg_latency_ms": 80, "accuracy_score": 0.8},
            pricing={"input_per_1k_tokens": price_in, "output_per_1k_tokens": price_out}))
    return keys


def make_calls(gateway: ThreadedGateway, key: str) -> None:
    """A few real calls, so that the models have observed latency and error rates."""
    for i in range(12):
        model = MODELS[i % len(MODELS)][0]
        gateway.call(gateway.harness.generate(key, model=model, input=f"question {i}",
                                              parameters={"max_tokens": 40}))


def seed_ledger(database_url: str, gateway: ThreadedGateway, count: int) -> None:
    """``count`` past calls of the consumer over the last 29 days, written into the ledger
    through its own batch write (so the roll-ups the usage pages read hold them too)."""
    async def key_ids() -> dict[str, str]:
        harness = gateway.harness
        async with harness.http.get(f"{harness.http_url}/v1/keys",
                                    headers=bearer(ADMIN_KEY)) as resp:
            return {k["name"]: k["id"] for k in (await resp.json())["keys"]}
    ids = gateway.call(key_ids())
    consumer, owner = ids["alice"], ids["acme-models"]
    asyncio.run(write_seeds(database_url, consumer, owner, count))


async def write_seeds(database_url: str, consumer: str, owner: str, count: int) -> None:
    """The past calls written as the ledger writes events: raw rows and roll-ups alike."""
    rng = random.Random(7)
    now = int(time.time() * 1000)
    db = Database(database_url)
    ledger = Ledger(db=db)
    batch: list[UsageEvent] = []
    try:
        for n in range(count):
            name, *_rest, price_in, price_out, _desc = MODELS[rng.randrange(len(MODELS))]
            tokens_in, tokens_out = rng.randint(5, 400), rng.randint(20, 900)
            cost = round((tokens_in * price_in + tokens_out * price_out) / 1000 * 1e9)
            batch.append(UsageEvent(
                f"gen_seed{n:012d}", now - rng.randrange(29 * DAY_MS), consumer, name, owner,
                tokens_in, tokens_out, False, cost, rng.randint(40, 400), 0,
                "ok" if rng.random() > 0.01 else "error"))
            if len(batch) == 10_000 or n == count - 1:
                await ledger._write(batch)
                batch = []
    finally:
        await db.close()


def report_usage(gateway: ThreadedGateway, key: str) -> None:
    """The provider's own count of one model, a little off the gateway's."""
    async def send() -> None:
        harness = gateway.harness
        month = time.strftime("%Y-%m-01T00:00:00Z", time.gmtime())
        body = {"model": "demo-text", "from": month,
                "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "usage": {"requests": 2, "tokens_processed": 120}}
        async with harness.http.post(f"{harness.http_url}/v1/usage/reports", json=body,
                                     headers=bearer(key)) as resp:
            assert resp.status == 202, await resp.text()
    gateway.call(send())


def time_queries(gateway: ThreadedGateway) -> None:
    """How long the API takes for what the usage pages ask (30 days, by model and by day)."""
    async def timed(path: str) -> float:
        harness = gateway.harness
        started = time.perf_counter()
        async with harness.http.get(f"{harness.http_url}{path}",
                                    headers=bearer(ADMIN_KEY)) as resp:
            assert resp.status == 200, await resp.text()
        return (time.perf_counter() - started) * 1000
    start = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 29 * 86400))
    for group in ("model", "day"):
        path = f"/v1/usage?group_by={group}&from={start}"
        print(f"GET {path}: {gateway.call(timed(path)):.0f} ms (admin, whole ledger)")


@contextmanager
def database_url(args: argparse.Namespace, scratch: Path) -> Iterator[str]:
    if not args.postgres:
        folder = args.keep or scratch
        folder.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{folder / 'gateway.db'}"
        return
    database = PostgresDatabase()
    url = asyncio.run(database.__aenter__())
    try:
        yield url
    finally:
        asyncio.run(database.__aexit__())


def shoot(console: Console, path: Path) -> None:
    driver = console.driver
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 160, 700), 2400))
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 900)


def load_ms(console: Console, page: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        console.reload(page)
        times.append(console.ready_ms())
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--keep", type=Path, help="keep the SQLite database in this folder")
    parser.add_argument("--postgres", action="store_true",
                        help="a fresh database on AI1NET_TEST_POSTGRES_URL instead of SQLite")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    provider, line = start_process("-m", "ai1net.demo.provider", "--port", "0")
    provider_url = line.rsplit(" ", 1)[1]
    with tempfile.TemporaryDirectory() as scratch, database_url(args, Path(scratch)) as url:
        try:
            with ThreadedGateway(gateway_settings(url)) as gateway, chromium() as driver:
                keys = set_up(gateway, provider_url)
                report_usage(gateway, keys["provider"])
                started = time.perf_counter()
                seed_ledger(url, gateway, args.events)
                print(f"ledger: {args.events} synthetic events written in "
                      f"{time.perf_counter() - started:.1f} s")
                make_calls(gateway, keys["consumer"])  # after: its spend then counts the seeds
                console = Console(driver, gateway.url, wait_s=300)
                time_queries(gateway)
                capture(console, keys, args.out)
                timings = {f"{role}:{page}": load_ms(console.signed_in(keys[role]), page)
                           for role, pages in PAGES.items() for page in pages}
                timings["signin"] = signin_ms(console)
        finally:
            stop_process(provider)
    print("page                   ready after navigation start (median of 5, ms)")
    for page, ms in timings.items():
        print(f"{page:<22} {ms:8.0f}")


def capture(console: Console, keys: dict[str, str], out: Path) -> None:
    console.sign_out()
    shoot(console, out / "signin.png")
    for role, pages in PAGES.items():
        console.sign_in(keys[role])
        for page in pages:
            console.open(page)
            if page == "playground":
                console.choose("select[name=model]", "demo-text")
                console.find("form.playground button[type=submit]").click()
                console.wait(lambda _d: console.text('[data-fact="Cost"]') != "—")
            if page == "keys":
                console.fill('[data-field="name"]', "bob")
                console.find("form[aria-labelledby=create-h] button[type=submit]").click()
                console.find("#new-key")
            shoot(console, out / f"{role}-{page}.png")
            if page == "mine":
                console.find("#register-open").click()
                console.fill('[data-field="name"]', "my-new-model")
                console.fill('[data-field="endpoint"]', "https://api.example.com/v1/generate")
                console.fill('[data-field="pricing.input_per_1k_tokens"]', "-0.5")
                console.find("form.model-form button[type=submit]").click()
                console.find('[aria-invalid="true"]')
                shoot(console, out / "provider-register-error.png")
    console.sign_in(keys["consumer"])
    console.color_scheme("dark")
    console.reload("spend")
    shoot(console, out / "consumer-spend-dark.png")
    console.color_scheme("light")
    console.driver.set_window_size(390, 844)
    for page in ("catalog", "playground"):
        console.reload(page)
        console.driver.save_screenshot(str(out / f"phone-{page}.png"))
    console.driver.set_window_size(1280, 900)


def signin_ms(console: Console) -> float:
    times = []
    for _ in range(5):
        console.sign_out()
        times.append(console.ready_ms())
    return statistics.median(times)


if __name__ == "__main__":
    main()
