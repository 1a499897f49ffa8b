"""The ``ai1net`` command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from ai1net.client import Ai1netError, Client, Delta, Outcome, Output, UsageSummary
from ai1net.server import demo_provider
from ai1net.server.settings import Settings


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        grpc_addr=getattr(args, "grpc_addr", None), http_addr=getattr(args, "http_addr", None),
        database_url=getattr(args, "database_url", None),
        redis_url=getattr(args, "redis_url", None), workers=getattr(args, "workers", None),
        grpc_target=getattr(args, "grpc_target", None))


# -- serve ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from ai1net.server.runner import serve

    if args.bridge_only and not args.grpc_target:
        raise SystemExit("--bridge-only needs --grpc-target HOST:PORT")
    settings = settings_from(args)
    run(serve(settings, demo=args.demo, grpc_only=args.grpc_only, bridge_only=args.bridge_only))
    return 0


def cmd_demo_provider(args: argparse.Namespace) -> int:
    argv = ["--host", args.host, "--port", str(args.port)]
    return demo_provider.main(argv)


# -- keys (straight to the database) -------------------------------------------------------


async def _key_store(args: argparse.Namespace) -> Any:
    from ai1net.server import audit
    from ai1net.server.keys import KeyStore
    from ai1net.server.storage import Database

    audit.acting(audit.CLI)  # the audit trail names the command line as the author
    db = Database(settings_from(args).database_url)
    await db.migrate()
    store = KeyStore(db=db)
    await store.load()
    return db, store


def cmd_keys(args: argparse.Namespace) -> int:
    from ai1net.server.keys import KeyLimits, usd_to_nanos

    async def main() -> int:
        db, store = await _key_store(args)
        try:
            if args.keys_command == "create":
                budget = usd_to_nanos(args.budget_usd, "budget_usd") \
                    if args.budget_usd is not None else None
                limits = KeyLimits(args.requests_per_minute, args.tokens_per_minute, budget)
                principal, secret = await store.create(role=args.role, name=args.name,
                                                       limits=limits)
                print(json.dumps({"id": principal.id, "role": principal.role,
                                  "name": principal.name, "key": secret}, indent=2))
            elif args.keys_command == "list":
                for key in await store.list(include_revoked=args.all):
                    state = "revoked" if key.revoked else "active"
                    print(f"{key.id}  {key.role:<9} {state:<8} {key.prefix}…  {key.name}")
            else:
                await store.revoke(args.id)
                print(f"revoked {args.id}")
        finally:
            await db.close()
        return 0

    return int(run(main()))


# -- API commands (through gRPC, with the Python client) ------------------------------------


def _client(args: argparse.Namespace) -> Client:
    key = args.key or os.environ.get("AI1NET_API_KEY") or os.environ.get("AI1NET_ADMIN_KEY")
    if not key:
        raise SystemExit("set AI1NET_API_KEY (or pass --key) to call the gateway")
    target = args.target or os.environ.get("AI1NET_GRPC_TARGET") \
        or os.environ.get("AI1NET_GRPC_ADDR") or "127.0.0.1:50051"
    return Client(target, api_key=key, tls=args.tls, ca_file=args.ca_file)


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=_iso))


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def cmd_models(args: argparse.Namespace) -> int:
    spec = json.loads(Path(args.file).read_text()) if args.models_command == "register" else {}
    with _client(args) as client:
        if args.models_command == "register":
            _print(dataclasses.asdict(client.register_model(spec)))
        elif args.models_command == "list":
            for model in client.list_models():
                print(f"{model.name:<24} {model.type:<6} {model.owner}  {model.endpoint}")
        elif args.models_command == "get":
            _print(dataclasses.asdict(client.get_model(args.name)))
        else:
            client.delete_model(args.name)
            print(f"deleted {args.name}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if not args.stream:
            answer = client.generate(args.text, model=args.model)
            _print_output(answer.output)
            _print_outcome(answer)
            return 0
        text = False
        for event in client.generate_stream(args.text, model=args.model):
            if isinstance(event, Delta):
                print(event.text, end="", flush=True)
                text = True
            elif isinstance(event, Output):
                _print_output(event.value)
            else:
                if text:
                    print()  # end the streamed line
                _print_outcome(event)
    return 0


def _print_output(output: Any) -> None:
    print(output if isinstance(output, str) else json.dumps(output))


def _print_outcome(outcome: Outcome) -> None:
    usage = outcome.usage
    print(f"[{outcome.model}, {usage.input_tokens} in + {usage.output_tokens} out tokens, "
          f"${outcome.cost_usd:.6f}]", file=sys.stderr)


def cmd_usage(args: argparse.Namespace) -> int:
    with _client(args) as client:
        report = client.usage(model=args.model, group_by=args.group_by, start=args.start or None,
                              end=args.end or None)
    print_usage(report)
    return 0


def print_usage(report: UsageSummary) -> None:
    columns = ("requests", "errors", "input_tokens", "output_tokens", "tokens_processed")
    rows = [(g.group, g.usage) for g in report.groups]
    rows.append(("TOTAL", report.usage))
    width = max(12, *(len(name) for name, _ in rows))
    print(f"{'group':<{width}} " + " ".join(f"{c:>16}" for c in (*columns, "cost_usd")))
    for name, usage in rows:
        cells = [f"{getattr(usage, c):>16}" for c in columns]
        print(f"{name:<{width}} " + " ".join(cells) + f" {usage.cost_usd:>16.6f}")


# -- parser --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ai1net", description="AI1NET gateway")
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC server and the HTTP bridge")
    serve.add_argument("--grpc-addr")
    serve.add_argument("--http-addr")
    serve.add_argument("--database-url")
    serve.add_argument("--redis-url")
    serve.add_argument("--workers", type=int)
    serve.add_argument("--grpc-only", action="store_true")
    serve.add_argument("--bridge-only", action="store_true")
    serve.add_argument("--grpc-target")
    serve.add_argument("--demo", action="store_true",
                       help="also run the demo provider with its models and a consumer key")
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser("demo-provider", help="run the bundled demo provider")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=3000)
    demo.set_defaults(func=cmd_demo_provider)

    keys = commands.add_parser("keys", help="manage API keys in the database")
    keys.add_argument("--database-url")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create")
    create.add_argument("--role", required=True, choices=("admin", "provider", "consumer"))
    create.add_argument("--name", default="")
    create.add_argument("--requests-per-minute", type=int, default=0)
    create.add_argument("--tokens-per-minute", type=int, default=0)
    create.add_argument("--budget-usd", type=float)
    listing = key_commands.add_parser("list")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = key_commands.add_parser("revoke")
    revoke.add_argument("id")
    keys.set_defaults(func=cmd_keys)

    def client_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--target", help="gRPC address (default AI1NET_GRPC_TARGET)")
        sub.add_argument("--key", help="API key (default AI1NET_API_KEY)")
        sub.add_argument("--tls", action="store_true",
                         help="connect over TLS, verified against the system's roots")
        sub.add_argument("--ca-file", help="verify the gateway against this CA (implies --tls)")

    models = commands.add_parser("models", help="register and inspect models")
    client_options(models)
    model_commands = models.add_subparsers(dest="models_command", required=True)
    model_commands.add_parser("register").add_argument("file")
    model_commands.add_parser("list")
    model_commands.add_parser("get").add_argument("name")
    model_commands.add_parser("delete").add_argument("name")
    models.set_defaults(func=cmd_models)

    generate = commands.add_parser("generate", help="call a model")
    client_options(generate)
    generate.add_argument("text")
    generate.add_argument("--model")
    generate.add_argument("--stream", action="store_true")
    generate.set_defaults(func=cmd_generate)

    usage = commands.add_parser("usage", help="show accounted usage")
    client_options(usage)
    usage.add_argument("--model", default="")
    usage.add_argument("--group-by", default="", choices=("", "model", "key", "hour", "day"))
    usage.add_argument("--from", dest="start", default="")
    usage.add_argument("--to", dest="end", default="")
    usage.set_defaults(func=cmd_usage)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = os.environ.get("AI1NET_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args))
    except Ai1netError as error:
        print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
