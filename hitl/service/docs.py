"""``/docs``: the API's reference in the browser, Swagger UI served from this service, not from a CDN.

FastAPI's own ``/docs`` loads Swagger UI from a CDN and starts it with an inline script, which a
Content-Security-Policy without ``'unsafe-inline'`` scripts forbids. Here the page, its script and
Swagger UI's files (as the ``fastapi-offline`` package ships them) all come from this origin, under a policy
that allows scripts from it alone.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)
STATIC = resources.files("hitl.service") / "static"
SWAGGER = resources.files("fastapi_offline") / "static"
_VENDOR = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"}
HEADERS = {
    # Swagger UI sets style attributes as it renders: inline styles, never inline scripts.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@router.get("/docs")
async def page() -> Response:
    with resources.as_file(STATIC / "docs.html") as path:
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/docs/static/{name}")
async def asset(name: str) -> Response:
    if name == "docs.js":
        with resources.as_file(STATIC / "docs.js") as path:
            return FileResponse(path, media_type="text/javascript; charset=utf-8", headers=HEADERS)
    if name not in _VENDOR:  # only the two files the page loads: nothing else of the package is served
        raise HTTPException(404, f"no file {name[:80]!r} in the API reference")
    with resources.as_file(SWAGGER / name) as path:
        return FileResponse(path, media_type=_VENDOR[name], headers=HEADERS)
