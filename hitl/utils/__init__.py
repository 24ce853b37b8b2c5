"""Helpers at Agno's import paths (``hitl.utils.pprint``)."""
