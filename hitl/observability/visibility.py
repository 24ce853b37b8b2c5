"""Search attributes: list paused runs from Temporal, by status, pending tool or deadline.

Every run keeps these up to date (once they are registered in its namespace)::

    temporal workflow list --query 'HitlStatus = "paused"'
    temporal workflow list --query 'HitlPendingTools = "execute_trade"'
    temporal workflow list --query 'HitlStatus = "paused" AND HitlNextDeadline < "2026-12-01T00:00:00Z"'

Workers register them when they start, and so does the first run a client starts. Where the
namespace refuses (Temporal Cloud registers attributes through its own console), runs started
from that client skip them: a run whose attributes are missing from its namespace would fail.
"""

from __future__ import annotations

import logging
import weakref

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from hitl.settings import environment

__all__ = ["STATUS", "PENDING_TOOLS", "NEXT_DEADLINE", "AGENT", "TEAM_RUN_ID", "register_search_attributes"]

STATUS = SearchAttributeKey.for_keyword("HitlStatus")
"""running, paused, completed, cancelled or error."""
PENDING_TOOLS = SearchAttributeKey.for_keyword_list("HitlPendingTools")
"""The tools whose calls wait for a decision (a team run lists its members' too)."""
NEXT_DEADLINE = SearchAttributeKey.for_datetime("HitlNextDeadline")
"""The earliest deadline of a pending approval; unset when none has one."""
AGENT = SearchAttributeKey.for_keyword("HitlAgent")
"""The agent's (or team's) name."""
TEAM_RUN_ID = SearchAttributeKey.for_keyword("HitlTeamRunId")
"""On a team member's run: the team run it works for."""

_KEYS = (STATUS, PENDING_TOOLS, NEXT_DEADLINE, AGENT, TEAM_RUN_ID)
_INDEXED = {
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KEYWORD_LIST": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}
# Per client object (not its id: a new client may reuse a collected one's id).
_registered: weakref.WeakKeyDictionary[Client, bool] = weakref.WeakKeyDictionary()
log = logging.getLogger(__name__)


async def register_search_attributes(client: Client) -> bool:
    """Register hitl's search attributes in the client's namespace; True when they are there.

    Idempotent and cached per client. False (with a warning) where the server refuses, and
    without asking when ``HITL_SEARCH_ATTRIBUTES=0``: runs started then go without them.
    """
    if environment().search_attributes.strip().lower() in ("0", "false", "no", "off"):
        return False
    if client in _registered:
        return _registered[client]
    wanted = {k.name: _INDEXED[k.indexed_value_type.name] for k in _KEYS}
    try:
        try:
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=client.namespace)
            )
            missing = {n: t for n, t in wanted.items() if n not in listed.custom_attributes}
        except RPCError as exc:
            if exc.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server cannot list
                raise
            missing = wanted
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
        ok = True
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            ok = True
        else:
            log.warning("hitl search attributes not registered in namespace %r (%s); runs started here will "
                        "not set them", client.namespace, exc.message)
            ok = False
    _registered[client] = ok
    return ok
