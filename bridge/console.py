"""GET /console: the web console, static files shipped inside the package (CONTRACT §7).

The console is a client of the public HTTP API like any other; this module only serves its
files, each from a fixed list read at start-up, and puts the security headers on every
answer under /console (errors included), so no inline script or framing is ever allowed.
It is a sub-application mounted at /console: its response hook runs for its own answers
only, not for every API call.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

PREFIX = "/console"
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
               ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "media-src 'self' https: data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
CONSOLE_FILES = web.AppKey("console_files", dict)


def _load_files() -> dict[str, tuple[bytes, str]]:
    """Every console file by its path below /console/, with its media type."""
    files: dict[str, tuple[bytes, str]] = {}
    root = resources.files("ai1net.bridge") / "console_files"

    def walk(folder: resources.abc.Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                walk(entry, f"{name}/")
            elif (media := MEDIA_TYPES.get(entry.name[entry.name.rfind("."):])) is not None:
                files[name] = (entry.read_bytes(), media)

    walk(root, "")
    return files


async def index(request: web.Request) -> web.Response:
    return _file(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    return _file(request, request.match_info["path"])


def _file(request: web.Request, name: str) -> web.Response:
    found = request.app[CONSOLE_FILES].get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, media = found
    charset = None if media.startswith("image/") else "utf-8"
    return web.Response(body=body, content_type=media, charset=charset)


async def _secure(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def add_console(app: web.Application) -> None:
    console = web.Application()
    console[CONSOLE_FILES] = _load_files()
    console.on_response_prepare.append(_secure)
    console.router.add_get("", index)
    console.router.add_get("/{path:[A-Za-z0-9_./-]+}", asset)
    app.add_subapp(PREFIX, console)
