"""Serving the phone web app (browser_client/app) from the signaling server.

The QR is a link to ``<origin>/p#1.<token>.<secret>.<agent key>``: ``/p`` answers with the app's
``index.html`` and ``/app/<file>`` with its modules, styles and icons. The same routes live in
the server embedded in ``peerbeam agent`` (plain HTTP on a LAN), because that is the same
``build_app``.

Everything here is about not leaking the fragment and not running anyone else's code
(DESIGN "Pairing" step 2): a strict Content-Security-Policy (our own scripts only, no inline
script, network access only to this origin and its WebSocket), no referrer, no MIME sniffing,
no framing. Files are revalidated on every load (``no-cache`` with a strong ETag): their names
carry no content hash, so a long ``max-age`` would keep a phone on an old app after an update.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

from aiohttp import web

# The repository's browser_client/app: the project is installed editable, so this is found
# relative to this package.
DEFAULT_APP_DIR: Final = Path(__file__).resolve().parent.parent / "browser_client" / "app"
APP_PREFIX: Final = "/app/"

_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}
# One spelling per file: plain names in plain folders, no dot-files, nothing to normalise.
_SAFE_PATH: Final = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
# What may be echoed into the CSP's connect-src: a host name or address and an optional port.
# Anything else (a forged Host header with ';' or spaces) gets 'self' alone.
_SAFE_HOST: Final = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_NOT_BUILT: Final = (
    "peerbeam: the phone web app is not built on this server.\n\n"
    "Run `bash scripts/webapp` (or `npm --prefix browser_client ci && npm --prefix browser_client "
    "run build`) and restart the server.\n"
)
APP_DIR_KEY: Final = web.AppKey("phone_app_dir", Path)


def content_security_policy(host: str | None) -> str:
    # 'self' covers ws:/wss: to the same host in CSP Level 3; older engines (Safari < 15.4) need
    # the WebSocket origin spelled out, so it is added when the Host header is well-formed.
    connect = "'self'"
    if host is not None and _SAFE_HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        f"connect-src {connect}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "manifest-src 'self'",
        "worker-src 'self'",
    ))


def security_headers(request: web.Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("Host")),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _serve(request: web.Request, path: Path) -> web.Response:
    headers = security_headers(request)
    try:
        body = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        headers["Cache-Control"] = "no-store"
        return web.Response(status=404, text="Not found.\n", headers=headers)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers["Cache-Control"] = "no-cache"
    headers["ETag"] = etag
    if etag in (tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    content_type = _TYPES[path.suffix]
    charset = "utf-8" if content_type.startswith("text/") or content_type.endswith("json") else None
    return web.Response(body=body, content_type=content_type, charset=charset, headers=headers)


async def _index(request: web.Request) -> web.Response:
    app_dir = request.app[APP_DIR_KEY]
    if not (app_dir / "vendor" / "noble.js").is_file():
        headers = {**security_headers(request), "Cache-Control": "no-store"}
        return web.Response(status=503, text=_NOT_BUILT, headers=headers)
    return _serve(request, app_dir / "index.html")


async def _asset(request: web.Request) -> web.Response:
    app_dir = request.app[APP_DIR_KEY]
    relative = request.match_info["path"]
    candidate = app_dir / relative
    if (
        not _SAFE_PATH.match(relative)
        or candidate.suffix not in _TYPES
        or ".." in relative.split("/")
        or not candidate.resolve().is_relative_to(app_dir.resolve())
    ):
        headers = {**security_headers(request), "Cache-Control": "no-store"}
        return web.Response(status=404, text="Not found.\n", headers=headers)
    return _serve(request, candidate)


async def _service_worker(request: web.Request) -> web.Response:
    # At the root, not under /app/: a service worker's scope is at most its own folder
    # (Service Workers §"max scope"), and the app shell it caches and the share target it
    # answers live at /p.
    return _serve(request, request.app[APP_DIR_KEY] / "sw.js")


def add_routes(app: web.Application, app_dir: Path | None = None) -> None:
    """``GET /p``, ``GET /sw.js`` and ``GET /app/{path}`` (HEAD too) on ``app``."""
    app[APP_DIR_KEY] = app_dir if app_dir is not None else DEFAULT_APP_DIR
    app.router.add_get("/p", _index)
    app.router.add_get("/sw.js", _service_worker)
    app.router.add_get(APP_PREFIX + "{path:.+}", _asset)
