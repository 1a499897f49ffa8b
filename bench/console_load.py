"""How long each console page takes to be ready in a real browser over a large ledger.

    python -m bench.console_load                                  # 10 M events, fresh file
    python -m bench.console_load --events 1000000
    python -m bench.console_load --database-url sqlite:////tmp/console-10m.db   # reused

A SQLite file (``--database-url``, or a temporary one) is filled through the ledger's own
batch write, roll-ups included (``bench.usage_query``'s events: 20 models of 5 owners, 500
keys, 2% errors), spread over the last ``--days`` (90) days; a file that already holds
``--events`` events is used as it is. A real ``ai1net serve`` runs on it with an admin key,
a consumer key (``key_consumer000``, about 1/500 of the events) and a provider key
(``key_owner0``, the owner of 4 of the 20 models, a fifth of the events). Headless Chromium
(Selenium, as the console's browser tests drive it) signs in as each role and opens each
page of its menu ``--runs`` times; a run is the time from navigation to the page's
``data-ready`` mark (its data rendered). Medians and maxima are printed and written to
``bench/results/console_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from ai1net.server.crypto import hash_key
from ai1net.server.storage import Database, utcnow
from ai1net.server.tables import KeyRow, ModelRow
from bench.usage_query import DAY_MS, KEYS, MODELS, OWNERS, fill

CONSUMER_KEY = "ai1_console_bench_consumer_0000000000000000000000"
PROVIDER_KEY = "ai1_console_bench_provider_0000000000000000000000"
ADMIN_KEY = "ai1_console_bench_admin_000000000000000000000000000"
CHARTED = ("spend", "earnings", "usage")  # the pages that chart the ledger
RESULTS = Path(__file__).parent / "results" / "console_load.json"


async def prepare(url: str, events: int, days: int) -> int:
    """The ledger filled (unless it already holds ``events``) and the two keys that own
    some of its events present; returns the events it holds."""
    db = Database(url)
    await db.migrate()
    async with db.engine.connect() as conn:
        held = int((await conn.execute(text("SELECT count(*) FROM usage_events"))).scalar_one())
    if held < events:
        if held:
            raise SystemExit(f"{url} holds {held:,} events, fewer than {events:,}: "
                             "give an empty or a full file")
        start_ms = (int(time.time() * 1000) // DAY_MS - days) * DAY_MS
        print(f"filling {events:,} events over {days} days ...", flush=True)
        seconds = await fill(db, events, start_ms, len(KEYS), days=days)
        print(f"inserted {events:,} events in {seconds:.0f} s", flush=True)
        held = events
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    else:
        print(f"reusing the {held:,} events already there", flush=True)
    now = utcnow()
    async with db.session() as session:
        for key_id, role, secret in ((KEYS[0], "consumer", CONSUMER_KEY),
                                     (OWNERS[0], "provider", PROVIDER_KEY)):
            if await session.get(KeyRow, key_id) is None:
                session.add(KeyRow(id=key_id, name=f"bench {role}", role=role,
                                   key_hash=hash_key(secret), prefix=secret[:12],
                                   created_at=now))
        for number, model in enumerate(MODELS):  # the catalog's and the owners' models
            if await session.get(ModelRow, f"mdl_bench{number:02d}") is None:
                session.add(ModelRow(
                    id=f"mdl_bench{number:02d}", name=model, owner=OWNERS[number % len(OWNERS)],
                    type="text", endpoint=f"http://127.0.0.1:9/{model}", auth_type="none",
                    input_price_nanos=2_000_000, output_price_nanos=4_000_000,
                    created_at=now, updated_at=now))
        await session.commit()
    await db.close()
    return held


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fill-only", action="store_true")
    args = parser.parse_args()
    if args.database_url:
        held = asyncio.run(prepare(args.database_url, args.events, args.days))
        if not args.fill_only:
            measure(args.database_url, held, args.runs)
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'console-bench.db'}"
        held = asyncio.run(prepare(url, args.events, args.days))
        if not args.fill_only:
            measure(url, held, args.runs)


# Resolves with the ms from setting location.hash to the page marking itself ready.
SWITCH = """
const [page, done] = [arguments[0], arguments[arguments.length - 1]];
const root = document.documentElement;
const began = performance.now();
const check = () => {
  if (root.dataset.state === "ready" && root.dataset.page === page) {
    observer.disconnect();
    done(performance.now() - began);
  }
};
const observer = new MutationObserver(check);
observer.observe(root, { attributes: true });
location.hash = page;
"""
# Resolves with the ms from choosing a period to its charts (or its empty or error state).
PERIOD = """
const [days, done] = [arguments[0], arguments[arguments.length - 1]];
const period = document.querySelector("select[name=period]");
const totals = document.querySelector(".page .totals");
const began = performance.now();
period.value = days;
period.dispatchEvent(new Event("change"));
const check = () => {
  if (!totals.querySelector(".state.loading")) {
    observer.disconnect();
    done(performance.now() - began);
  }
};
const observer = new MutationObserver(check);
observer.observe(document.querySelector(".page"), { childList: true, subtree: true });
check();
"""


def measure(url: str, events: int, runs: int) -> None:
    from bench.procs import free_port, spawn, wait_http
    from tests.support.browser import Console, chromium

    log_dir = Path(tempfile.mkdtemp(prefix="ai1net-console-bench-"))
    http_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI1NET_", "OTEL_"))}
    env.update(AI1NET_ADMIN_KEY=ADMIN_KEY, AI1NET_SECRET_KEY="bench",
               AI1NET_ALLOW_PRIVATE_ENDPOINTS="1")
    gateway = spawn("gateway", [sys.executable, "-m", "ai1net.server.cli", "serve",
                                "--grpc-addr", f"127.0.0.1:{free_port()}",
                                "--http-addr", f"127.0.0.1:{http_port}",
                                "--database-url", url], core=None, log_dir=log_dir, env=env)
    base = f"http://127.0.0.1:{http_port}"
    rows: list[dict[str, object]] = []
    try:
        startup = wait_http(gateway, f"{base}/readyz", timeout=120)
        print(f"gateway ready in {startup:.1f} s; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs", flush=True)
        with chromium() as driver:
            console = Console(driver, base, wait_s=60)
            for role, key in (("consumer", CONSUMER_KEY), ("provider", PROVIDER_KEY),
                              ("admin", ADMIN_KEY)):
                console.sign_in(key)
                pages = [a.get_attribute("data-page") or "" for a in console.find_all("#nav a")]
                for page in pages:
                    loads, switches = [], []
                    for _ in range(runs):
                        console.reload(page)  # a fresh document: readyMs from navigation
                        loads.append(float(console.ready_ms()))
                        console.open("catalog" if page != "catalog" else "playground")
                        switches.append(float(driver.execute_async_script(SWITCH, page)))
                    rows.append(row(role, page, "load", loads))
                    rows.append(row(role, page, "switch", switches))
                    if page in CHARTED:
                        for days in ("30", "90"):
                            times = []
                            for _ in range(runs):
                                console.reload(page)
                                times.append(float(driver.execute_async_script(PERIOD, days)))
                            rows.append(row(role, f"{page} {days} d", "period", times))
                    errors = console.find_all(".state.error")
                    if errors:
                        raise RuntimeError(f"{role} {page}: {errors[0].text}")
                    if page in CHARTED and not console.find_all("#chart-cost-day"):
                        raise RuntimeError(f"{role} {page}: no charts (the key has no events?)")
    finally:
        gateway.stop()
    print(f"{events:,} events; ms, {runs} runs: load = navigation to ready in a fresh "
          "document, switch = from the menu, period = choosing it on the page")
    print(f"{'role':<9} {'page':<16} {'how':<7} {'median':>7} {'max':>7}")
    for r in rows:
        print(f"{r['role']:<9} {r['page']:<16} {r['how']:<7} {r['median_ms']:>7.0f} "
              f"{r['max_ms']:>7.0f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "events": events, "runs": runs, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg()[0], "cpus": os.cpu_count(), "pages": rows}, indent=1))
    print(f"written to {RESULTS}")


def row(role: str, page: str, how: str, times: list[float]) -> dict[str, object]:
    return {"role": role, "page": page, "how": how, "median_ms": statistics.median(times),
            "max_ms": max(times), "runs_ms": [round(t, 1) for t in times]}


if __name__ == "__main__":
    sys.exit(cli())
