"""The live migration dashboard: ``/dashboard`` and its static files, served from the package.

The page is plain HTML, CSS and ES modules in ``api/dashboard_static/`` (no build step, no CDN:
the machines it runs on may have no internet). It logs in with an admin token and reads and drives
everything through ``/admin/v1/``; nothing here touches a service, so the page can show no more than
the token it was given may see.

Every answer carries a strict Content-Security-Policy (only this origin; no inline script or style,
no frames, no plugins), ``nosniff`` and ``no-referrer``. Files are revalidated on each load
(``no-cache`` with a strong ETag) so that an upgraded server never runs an old ``app.js`` against a
new API, while an unchanged file costs a 304.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response

STATIC_PACKAGE = "voxshift.api"
STATIC_DIR = "dashboard_static"
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


@functools.cache
def static_files() -> dict[str, StaticFile]:
    """Every servable file of the package's static folder, by name (read once; a name not in this
    table is a 404, so no request path reaches the file system)."""
    folder = resources.files(STATIC_PACKAGE).joinpath(STATIC_DIR)
    files: dict[str, StaticFile] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[entry.name] = StaticFile(body, CONTENT_TYPES[suffix], etag)
    return files


def _answer(request: Request, name: str) -> Response:
    found = static_files().get(name)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no dashboard file {name!r}")
    headers = {**SECURITY_HEADERS, "ETag": found.etag}
    if found.etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else found.body
    headers["Content-Length"] = str(len(found.body))
    return Response(body, media_type=found.content_type, headers=headers)


router = APIRouter(include_in_schema=False)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
@router.api_route("/dashboard/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    return _answer(request, INDEX)


@router.api_route("/dashboard/static/{name}", methods=["GET", "HEAD"])
async def static(request: Request, name: str) -> Response:
    return _answer(request, name)
