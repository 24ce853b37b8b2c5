"""The approval inbox in the browser: static pages over the service's own API, nothing else.

The pages ship in the package (``hitl/service/static``): HTML, one stylesheet and a few ES modules,
no build step and no CDN. They sign in with a bearer token kept in the tab's ``sessionStorage``
and call the same routes any other client calls, so the inbox can do exactly what its token may.
Every page is served with a strict Content-Security-Policy (scripts from this origin only, no
inline script, no framing).
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from hitl.identity import Principal
from hitl.service._state import State
from hitl.service.auth import current_principal
from hitl.service.errors import problems

router = APIRouter(tags=["inbox"])
STATIC = resources.files("hitl.service") / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Me(BaseModel):
    """Who the caller is, as its credential proves, and what the inbox needs to link out."""

    name: str
    scopes: list[str]
    groups: list[str]
    via: str
    temporal_ui_url: str | None = Field(default=None, description="The Temporal UI, if configured (HITL_TEMPORAL_UI_URL).")
    namespace: str


@router.get("/me", response_model=Me, responses=problems(401), summary="Who the credential proves you are")
async def me(principal: Annotated[Principal, Depends(current_principal)], s: State) -> Me:
    return Me(name=principal.name, scopes=sorted(principal.scopes), groups=sorted(principal.groups), via=principal.via,
              temporal_ui_url=s.config.temporal_ui_url, namespace=s.config.temporal.namespace)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/inbox", status_code=307)


@router.get("/inbox", include_in_schema=False)
@router.get("/inbox/approvals/{approval_id:path}", include_in_schema=False)
async def page(approval_id: str | None = None) -> Response:
    """One page for the list and for an approval's detail: the script reads the path."""
    return _file("inbox.html")


@router.get("/inbox/static/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    return _file(name)


def _file(name: str) -> Response:
    # Only plain names of files that ship: no paths, no dot-files, a known type.
    kind = _TYPES.get(name[name.rfind("."):]) if "." in name else None
    item = STATIC / name
    if kind is None or "/" in name or "\\" in name or name.startswith(".") or not item.is_file():
        raise HTTPException(404, f"no file {name[:80]!r} in the inbox")
    with resources.as_file(item) as path:
        return FileResponse(path, media_type=kind, headers={**HEADERS, "Cache-Control": "no-cache"})
