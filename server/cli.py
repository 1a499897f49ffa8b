"""The ``ai1net`` command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from ai1net.client import Ai1netError, Client, Delta, Outcome, Output, UsageSummary
from ai1net.server.settings import Settings


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings from the environment, with the command's flags (named as the settings
    they set) winning."""
    flags = {field.name: getattr(args, field.name, None) for field in dataclasses.fields(Settings)}
    return Settings.from_env(**flags)


# -- serve ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from ai1net.server.benchswitches import BenchSwitches
    from ai1net.server.runner import serve

    if args.bridge_only and not args.grpc_target:
        raise SystemExit("--bridge-only needs --grpc-target HOST:PORT")
    settings = settings_from(args)
    run(serve(settings, demo=args.demo, grpc_only=args.grpc_only, bridge_only=args.bridge_only,
              switches=BenchSwitches.from_env()))
    return 0


def cmd_demo_provider(args: argparse.Namespace) -> int:
    # Imported here: the other commands never need the demo provider.
    from ai1net.demo import provider

    return provider.main(["--host", args.host, "--port", str(args.port)])


def cmd_provider_check(args: argparse.Namespace) -> int:
    """Run the conformance check against an endpoint; 0 when nothing failed, else 1."""
    from ai1net.server.conformance import Checker, Target
    from ai1net.server.registry import auth_headers
    from ai1net.server.transport import HttpTransport

    allow_private = Settings.from_env().allow_private_endpoints
    auth = args.auth or ("bearer" if args.key else "none")
    target = Target(endpoint=args.url, type=args.type, api=args.api,
                    auth=auth_headers(auth, {"api_key": args.key or ""}),
                    upstream_model=args.upstream_model or "")

    async def main() -> Any:
        transport = HttpTransport(allow_private=allow_private)
        try:
            return await Checker(transport=transport, calls=args.calls).run(target)
        finally:
            await transport.close()

    report = run(main())
    print(json.dumps(report.as_json(), indent=2) if args.json else report.text())
    return 0 if report.passed else 1


# -- keys (straight to the database) -------------------------------------------------------


async def _key_store(args: argparse.Namespace) -> Any:
    """The key store on the configured database; its changes ring running servers through
    Redis when one is configured (they see them at their next poll of the database anyway)."""
    from ai1net.server import audit
    from ai1net.server.changes import ChangeFeed
    from ai1net.server.keys import KeyStore
    from ai1net.server.storage import Database

    audit.acting(audit.CLI)  # the audit trail names the command line as the author
    settings = settings_from(args)
    db = Database(settings.database_url)
    await db.migrate()
    feed = ChangeFeed(db=db, redis_url=settings.redis_url)
    store = KeyStore(db=db, notify=feed.publish)
    await store.load()
    return db, feed, store


def cmd_keys(args: argparse.Namespace) -> int:
    from ai1net.server.keys import KeyLimits, usd_to_nanos

    async def main() -> int:
        db, feed, store = await _key_store(args)
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
            await feed.close()
            await db.close()
        return 0

    return int(run(main()))


def cmd_secrets(args: argparse.Namespace) -> int:
    from ai1net.server.crypto import CredentialBox, passphrases
    from ai1net.server.rotation import rotate_credentials
    from ai1net.server.storage import Database

    async def main() -> int:
        settings = settings_from(args)
        box = CredentialBox(passphrases(settings))
        db = Database(settings.database_url)
        try:
            await db.migrate()
            count = await rotate_credentials(db=db, box=box)
        finally:
            await db.close()
        print(f"re-encrypted {count} stored credentials with the first passphrase of "
              f"AI1NET_SECRET_KEY")
        return 0

    return int(run(main()))


# -- API commands (through gRPC, with the Python client) ------------------------------------


def _client(args: argparse.Namespace) -> Client:
    key = args.key or os.environ.get("AI1NET_API_KEY") or os.environ.get("AI1NET_ADMIN_KEY")
    if not key:
        raise SystemExit("set AI1NET_API_KEY (or pass --key) to call the gateway")
    target = args.target or os.environ.get("AI1NET_GRPC_TARGET") \
        or os.environ.get("AI1NET_GRPC_ADDR") or "127.0.0.1:50051"
    settings = settings_from(args)
    return Client(target, api_key=key, tls=settings.tls, ca_file=settings.ca_file,
                  cert_file=settings.client_cert, key_file=settings.client_key)


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


def version() -> str:
    try:
        return importlib.metadata.version("ai1net")
    except importlib.metadata.PackageNotFoundError:  # run from a clone without installing
        return "unknown"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ai1net", description="AI1NET gateway")
    top.add_argument("--version", action="version", version=f"ai1net {version()}",
                     help="print the version and exit")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve(commands)
    demo = commands.add_parser("demo-provider", help="run the bundled demo provider",
                               description="A provider speaking the provider contract.")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--port", type=int, default=3000, help="port to listen on (0: any)")
    demo.set_defaults(func=cmd_demo_provider)
    add_provider_check(commands)
    add_keys(commands)
    add_secrets(commands)
    add_api_commands(commands)
    return top


Commands = Any  # argparse's private _SubParsersAction


def add_provider_check(commands: Commands) -> None:
    check = commands.add_parser(
        "provider-check", help="check a provider endpoint against the provider contract",
        description="Call a provider endpoint as the gateway would and report, check by "
                    "check, what the provider contract asks of it. Exit status 0 when "
                    "nothing failed, 1 otherwise, 2 on bad usage.")
    check.add_argument("url", help="the endpoint (for --api openai: its base URL, .../v1)")
    check.add_argument("--key", help="the provider's credential, if it asks for one")
    check.add_argument("--auth", choices=("bearer", "api_key", "none"),
                       help="how the key is sent (default bearer with --key, else none)")
    check.add_argument("--type", choices=("text", "image", "audio"), default="text",
                       help="the model type the answers must fit (default text)")
    check.add_argument("--api", choices=("ai1net", "openai"), default="ai1net",
                       help="the wire format (default ai1net)")
    check.add_argument("--upstream-model", help="with --api openai: the model to ask for")
    check.add_argument("--calls", type=int, default=5,
                       help="calls to measure latency over (default 5)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=cmd_provider_check)


def add_serve(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the gRPC server and the HTTP bridge",
                                description="Run the gateway until SIGTERM or SIGINT.")
    serve.add_argument("--grpc-addr", metavar="HOST:PORT",
                       help="gRPC listen address (default AI1NET_GRPC_ADDR or 127.0.0.1:50051)")
    serve.add_argument("--http-addr", metavar="HOST:PORT",
                       help="HTTP listen address (default AI1NET_HTTP_ADDR or 127.0.0.1:8080)")
    serve.add_argument("--database-url", metavar="URL",
                       help="sqlite:///FILE or postgresql://... (default AI1NET_DATABASE_URL)")
    serve.add_argument("--redis-url", metavar="URL",
                       help="Redis shared by replicas (default AI1NET_REDIS_URL; unset: none)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="processes sharing both ports (default 1)")
    serve.add_argument("--grpc-only", action="store_true", help="run the gRPC server only")
    serve.add_argument("--bridge-only", action="store_true",
                       help="run the HTTP bridge only, as a client of --grpc-target")
    serve.add_argument("--grpc-target", metavar="HOST:PORT",
                       help="the gRPC server a --bridge-only bridge calls")
    serve.add_argument("--tls-cert", metavar="FILE",
                       help="serve both listeners over TLS with this certificate chain (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    serve.add_argument("--tls-client-ca", metavar="FILE",
                       help="require gRPC clients to present a certificate signed by this CA")
    add_tls_client_options(serve, "--grpc-target (with --bridge-only)")
    serve.add_argument("--demo", action="store_true",
                       help="also run the demo provider with its models and a consumer key")
    serve.set_defaults(func=cmd_serve)


def add_tls_client_options(command: argparse.ArgumentParser, server: str) -> None:
    command.add_argument("--tls", action="store_true", default=None,
                         help=f"connect to {server} over TLS (default AI1NET_TLS)")
    command.add_argument("--ca-file", metavar="FILE",
                         help="CA certificates to verify the server with, implies --tls "
                              "(default AI1NET_CA_FILE, else the system's trust store)")
    command.add_argument("--client-cert", metavar="FILE",
                         help="a client certificate, for a server that requires one")
    command.add_argument("--client-key", metavar="FILE", help="the private key of --client-cert")


def add_keys(commands: Commands) -> None:
    keys = commands.add_parser("keys", help="manage API keys in the database",
                               description="Read and write keys straight in the database; "
                                           "running servers apply changes within a second.")
    keys.add_argument("--database-url", metavar="URL", help="default AI1NET_DATABASE_URL")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="make a key and print it (shown once)")
    create.add_argument("--role", required=True, choices=("admin", "provider", "consumer"),
                        help="what the key may do")
    create.add_argument("--name", default="", help="a label for people")
    create.add_argument("--requests-per-minute", type=int, default=0, metavar="N",
                        help="rate limit (0: none)")
    create.add_argument("--tokens-per-minute", type=int, default=0, metavar="N",
                        help="token rate limit (0: none)")
    create.add_argument("--budget-usd", type=float, metavar="X",
                        help="spending budget in US dollars (default: none)")
    listing = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id", help="the key's id (key_...)")
    keys.set_defaults(func=cmd_keys)


def add_secrets(commands: Commands) -> None:
    secrets = commands.add_parser(
        "secrets", help="manage the secret that encrypts provider credentials")
    secrets.add_argument("--database-url", metavar="URL", help="default AI1NET_DATABASE_URL")
    secret_commands = secrets.add_subparsers(dest="secrets_command", required=True,
                                             metavar="ACTION")
    secret_commands.add_parser(
        "rotate", help="re-encrypt every stored credential with the first passphrase of "
                       "AI1NET_SECRET_KEY (give it NEW,OLD)")
    secrets.set_defaults(func=cmd_secrets)


def add_api_commands(commands: Commands) -> None:
    client = argparse.ArgumentParser(add_help=False)  # the options every API command takes
    client.add_argument("--target", metavar="HOST:PORT",
                        help="gRPC address (default AI1NET_GRPC_TARGET or 127.0.0.1:50051)")
    client.add_argument("--key", help="API key (default AI1NET_API_KEY)")
    add_tls_client_options(client, "the gateway")

    models = commands.add_parser("models", help="register and inspect models")
    model_commands = models.add_subparsers(dest="models_command", required=True,
                                           metavar="ACTION")
    model_commands.add_parser("register", parents=[client],
                              help="register the model a JSON file describes") \
        .add_argument("file", help="the registration body (JSON)")
    model_commands.add_parser("list", parents=[client], help="list the models")
    model_commands.add_parser("get", parents=[client], help="show one model").add_argument(
        "name", help="the model's name")
    model_commands.add_parser("delete", parents=[client], help="delete one model").add_argument(
        "name", help="the model's name")
    models.set_defaults(func=cmd_models)

    generate = commands.add_parser("generate", parents=[client], help="call a model")
    generate.add_argument("text", help="the input")
    generate.add_argument("--model", help="a model by name (default: routed)")
    generate.add_argument("--stream", action="store_true", help="print the answer as it comes")
    generate.set_defaults(func=cmd_generate)

    usage = commands.add_parser("usage", parents=[client], help="show accounted usage")
    usage.add_argument("--model", default="", help="only this model")
    usage.add_argument("--group-by", default="", choices=("", "model", "key", "hour", "day"),
                       help="one row per model, key, hour or day")
    usage.add_argument("--from", dest="start", default="", metavar="TIME",
                       help="from this RFC 3339 time")
    usage.add_argument("--to", dest="end", default="", metavar="TIME",
                       help="until this RFC 3339 time")
    usage.set_defaults(func=cmd_usage)


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
