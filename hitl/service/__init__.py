"""The decision service: decisions from other services over HTTP, as an authenticated principal.

    hitl serve --port 8000 --agents myproject.agents     # or: uvicorn.run(create_app())

Routes: ``/approvals`` (list, count, read, resolve, change, and the ``/approvals/events`` stream),
``/runs`` (start, read, continue, cancel, list); the OpenAPI document is at ``/openapi.json``.
Needs the ``service`` extra: ``pip install 'hitl[service]'``.
"""

from __future__ import annotations

from hitl.service.app import create_app
from hitl.service.config import ServiceConfig

__all__ = ["create_app", "ServiceConfig"]
