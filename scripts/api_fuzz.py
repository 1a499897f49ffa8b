"""schemathesis against a real gateway (``make api-fuzz``, run by .ci/run).

Starts ``ai1net serve --demo`` on a fresh SQLite file (so generate calls reach a real
provider), waits until it is ready, and runs every schemathesis check and phase — stateful
links between keys, models and usage included — with the admin key and a fixed seed
(tests/fuzz/schemathesis.toml). Exits with schemathesis's status: 0 only with no failure
and no server error.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "fuzz" / "schemathesis.toml"
READY_TIMEOUT_S = 60.0
# aiohttp answers an unparsable request (a header with a control character) with a 400
# before any of the gateway's code runs, and logs it with a traceback.
MALFORMED_REQUEST = "aiohttp.http_exceptions.BadHttpMessage"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # a process starting up: nothing to await but its port
    raise SystemExit(f"the gateway was not ready within {READY_TIMEOUT_S:g} s")


def admin_key_id(url: str, admin: str) -> str:
    """The id of the key the run calls with (the hooks keep the run from revoking it)."""
    request = urllib.request.Request(f"{url}/v1/keys",  # noqa: S310
                                     headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        keys = json.load(answer)["keys"]
    return next(key["id"] for key in keys if key["name"] == "AI1NET_ADMIN_KEY")


def run_schemathesis(url: str, admin: str, args: argparse.Namespace,
                     env: dict[str, str]) -> int:
    command = [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG),
               "run", f"{url}/openapi.json", "--checks", "all",
               "-H", f"Authorization: Bearer {admin}", "--no-color", *args.st_args]
    if args.max_examples:
        command += ["--max-examples", str(args.max_examples)]
    return subprocess.call(command, cwd=ROOT, env=env)


def unexpected_errors(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines()
            if ("Traceback" in line or "unexpected error" in line)
            and MALFORMED_REQUEST not in line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=None,
                        help="test cases per operation (default: the config file's)")
    parser.add_argument("st_args", nargs="*", help="more arguments for `st run` (after --)")
    args = parser.parse_args(argv)
    admin = f"ai1_fuzz-{secrets.token_hex(16)}"
    http, grpc = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AI1NET_ADMIN_KEY": admin, "AI1NET_SECRET_KEY": secrets.token_hex(16),
               "AI1NET_DATABASE_URL": f"sqlite:///{tmp}/fuzz.db"}
        env.pop("AI1NET_REDIS_URL", None)
        log = Path(tmp, "gateway.log")
        with log.open("wb") as output:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "ai1net.server.cli", "serve", "--demo",
                 "--http-addr", f"127.0.0.1:{http}", "--grpc-addr", f"127.0.0.1:{grpc}"],
                env=env, cwd=tmp, stdout=output, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{http}"
            try:
                wait_ready(url, gateway)
                env["AI1NET_FUZZ_ADMIN_KEY_ID"] = admin_key_id(url, admin)
                status = run_schemathesis(url, admin, args, env)
            finally:
                gateway.terminate()
                gateway.wait(15)
        errors = unexpected_errors(log)
    if errors:
        print("the gateway logged unexpected errors:", *errors, sep="\n", file=sys.stderr)
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
