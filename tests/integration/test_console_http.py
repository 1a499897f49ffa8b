"""GET /console over plain HTTP: the files, and the security headers on every answer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from yarl import URL

from ai1net.bridge.console import SECURITY_HEADERS
from tests.conftest import Harness

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
       "media-src 'self' https: data:; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
FOLDER = Path(__file__).resolve().parents[2] / "bridge" / "console_files"


def assert_secured(headers) -> None:
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_the_page_needs_no_key_and_carries_the_policy(harness: Harness):
    async with harness.http.get(f"{harness.http_url}/console") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert_secured(resp.headers)
        page = await resp.text()
    assert '<script type="module" src="/console/app.js"></script>' in page
    assert "<script>" not in page and " style=" not in page and " on" not in page.lower()


@pytest.mark.parametrize(("path", "media"), [("app.js", "text/javascript"),
                                             ("pages/catalog.js", "text/javascript"),
                                             ("console.css", "text/css"),
                                             ("icon.svg", "image/svg+xml")])
async def test_files_are_served_with_their_type(harness: Harness, path: str, media: str):
    async with harness.http.get(f"{harness.http_url}/console/{path}") as resp:
        assert resp.status == 200
        assert resp.content_type == media
        assert_secured(resp.headers)
        assert await resp.read() == (FOLDER / path).read_bytes()


@pytest.mark.parametrize("path", ["nope.js", "../app.py", "pages/../../console.py",
                                  "%2e%2e/app.py"])
async def test_anything_else_is_a_secured_404(harness: Harness, path: str):
    url = URL(f"{harness.http_url}/console/{path}", encoded=True)  # sent as written
    async with harness.http.get(url) as resp:
        assert resp.status == 404
        assert_secured(resp.headers)
        assert (await resp.json())["error"]["type"] == "not_found"


async def test_the_api_keeps_its_own_headers(harness: Harness):
    async with harness.http.get(f"{harness.http_url}/healthz") as resp:
        assert resp.status == 200
        assert not set(SECURITY_HEADERS) & set(resp.headers)


def test_the_page_uses_no_inline_script_and_no_html_sinks():
    for script in FOLDER.rglob("*.js"):
        source = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                     "new Function", "localStorage", "document.cookie"):
            assert sink not in source, f"{script.name} uses {sink}"


def test_every_console_file_is_package_data():
    """`pip install .` ships the console: each file's folder is a listed package and the
    file matches one of its package-data patterns."""
    setuptools = tomllib.loads((FOLDER.parents[1] / "pyproject.toml").read_text())["tool"][
        "setuptools"]
    for path in FOLDER.rglob("*"):
        if path.is_file():
            package = ".".join(("ai1net.bridge", *path.parent.relative_to(FOLDER.parent).parts))
            assert package in setuptools["packages"], package
            patterns = setuptools["package-data"].get(package, [])
            assert any(Path(path.name).match(p) for p in patterns), path
