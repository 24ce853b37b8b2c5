"""hitl: durable human-in-the-loop for LLM agents, on Temporal.

Agno's human-in-the-loop API with each run a Temporal workflow: pauses survive crashes and
deploys, and decisions may come from any process or any Temporal client.
"""

from hitl.agent import Agent
from hitl.approval import ApprovalType, approval
from hitl.db.postgres import PostgresDb
from hitl.decisions import Confirm, ContinueRunRequest, ProvideInput, ProvideResult, Reject
from hitl.errors import (
    ApprovalConflictError,
    ConfigurationError,
    DecisionNotAllowedError,
    HitlError,
    InvalidDecisionError,
    ModelRequestError,
    RequirementAlreadyResolvedError,
    RequirementNotFoundError,
    RunEndedError,
    RunNotFoundError,
    ToolDefinitionError,
    UnresolvedRequirementsError,
)
from hitl.models.openai import OpenAIChat, OpenAIResponses
from hitl.run import RunOutput, RunRequirement, RunStatus, ToolExecution, UserInputField
from hitl.team import Team
from hitl.tools import Tool, tool

__all__ = [
    "Team",
    "Agent",
    "ApprovalType",
    "approval",
    "PostgresDb",
    "Confirm",
    "ContinueRunRequest",
    "ProvideInput",
    "ProvideResult",
    "Reject",
    "ApprovalConflictError",
    "ConfigurationError",
    "DecisionNotAllowedError",
    "HitlError",
    "InvalidDecisionError",
    "ModelRequestError",
    "RequirementAlreadyResolvedError",
    "RequirementNotFoundError",
    "RunEndedError",
    "RunNotFoundError",
    "ToolDefinitionError",
    "UnresolvedRequirementsError",
    "OpenAIChat",
    "OpenAIResponses",
    "RunOutput",
    "RunRequirement",
    "RunStatus",
    "ToolExecution",
    "UserInputField",
    "Tool",
    "tool",
]
