"""``WikipediaTools`` (Agno's ``agno.tools.wikipedia``): search Wikipedia.

Needs the ``wikipedia`` package (``pip install wikipedia``), as Agno's does: making the toolkit
without it is an ImportError that says so. Its tool ``search_wikipedia(query)`` answers with the
article's summary as JSON (``{"name": query, "meta_data": {}, "content": summary}``), the choices of
an ambiguous title (``{"disambiguation": query, "options": [...]}``), or ``{"error": ...}``.

    WikipediaTools(requires_confirmation_tools=["search_wikipedia"])  # each search waits for confirm()
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hitl.errors import ToolDefinitionError
from hitl.tools._optional import require
from hitl.tools.toolkit import Toolkit

__all__ = ["WikipediaTools"]

log = logging.getLogger(__name__)


class WikipediaTools(Toolkit):
    """Searches Wikipedia (Agno's ``WikipediaTools``).

    Args:
        knowledge: Agno's knowledge base to add the articles to; hitl has none, so only None is taken.
        auto_suggest: Let Wikipedia correct the query to the closest title (``wikipedia.summary``'s).
        all: Offer every tool (there is one).
        **kwargs: The :class:`~hitl.tools.Toolkit`'s (``requires_confirmation_tools``...).

    Raises:
        ImportError: the ``wikipedia`` package is not installed.
        ToolDefinitionError: a ``knowledge`` was given.
    """

    def __init__(self, knowledge: Any = None, auto_suggest: bool = True, all: bool = False, **kwargs: Any) -> None:
        require("wikipedia", "wikipedia", "WikipediaTools")
        if knowledge is not None:
            raise ToolDefinitionError(
                "WikipediaTools(knowledge=...): hitl has no knowledge bases, so search_wikipedia_and_update_knowledge_base "
                "is not offered; leave knowledge out to search Wikipedia with search_wikipedia")
        self.auto_suggest = auto_suggest
        self.knowledge = knowledge
        super().__init__(name="wikipedia_tools", tools=[self.search_wikipedia], **kwargs)

    def search_wikipedia(self, query: str) -> str:
        """Search Wikipedia.

        Args:
            query: What to search for.

        Returns:
            The matching article's summary, from Wikipedia.
        """
        wikipedia = require("wikipedia", "wikipedia", "WikipediaTools")
        from wikipedia.exceptions import DisambiguationError

        log.info("searching wikipedia for %r", query)
        try:
            content = wikipedia.summary(query, auto_suggest=self.auto_suggest)
        except DisambiguationError as exc:
            return json.dumps({"disambiguation": query, "options": exc.options})
        except Exception as exc:  # told to the model, as Agno does (no retry)
            log.warning("searching wikipedia for %r failed: %s", query, exc)
            return json.dumps({"error": str(exc)})
        return json.dumps({"name": query, "meta_data": {}, "content": content})
