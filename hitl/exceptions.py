"""Agno's guardrail exceptions (``agno.exceptions``): a pre-hook or post-hook raises one to stop a run.

A pre-hook's :class:`InputCheckError` means the run never starts: the call returns a RunOutput with
status ``error`` and the message as its content, as Agno's does. A post-hook's
:class:`OutputCheckError` turns the answer the caller gets into an ``error`` (the durable run has
completed; its record in Temporal is unchanged). Any other exception a hook raises is logged.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = ["CheckTrigger", "InputCheckError", "OutputCheckError"]


class CheckTrigger(Enum):
    """Why a guardrail stopped a run."""

    OFF_TOPIC = "off_topic"
    INPUT_NOT_ALLOWED = "input_not_allowed"
    OUTPUT_NOT_ALLOWED = "output_not_allowed"
    VALIDATION_FAILED = "validation_failed"
    PROMPT_INJECTION = "prompt_injection"
    PII_DETECTED = "pii_detected"


class _CheckError(Exception):
    type = "check_error"
    default_trigger = CheckTrigger.VALIDATION_FAILED

    def __init__(self, message: str, check_trigger: CheckTrigger | str | None = None,
                 additional_data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.check_trigger = check_trigger if check_trigger is not None else self.default_trigger
        self.error_id = self.check_trigger.value if isinstance(self.check_trigger, CheckTrigger) else str(self.check_trigger)
        self.additional_data = additional_data


class InputCheckError(_CheckError):
    """A pre-hook refuses the run's input: the run does not start."""

    type = "input_check_error"
    default_trigger = CheckTrigger.INPUT_NOT_ALLOWED


class OutputCheckError(_CheckError):
    """A post-hook refuses the run's answer: the caller gets an error instead."""

    type = "output_check_error"
    default_trigger = CheckTrigger.OUTPUT_NOT_ALLOWED
