"""``WebSearchTools`` (Agno's ``agno.tools.websearch``): search the web and the news through DDGS, a
metasearch library over several engines (``backend``: auto, duckduckgo, google, bing, brave...).

Needs the ``ddgs`` package (``pip install ddgs``), as Agno's does: making the toolkit without it is an
ImportError that says so. Its tools ``web_search(query, max_results=5)`` and
``search_news(query, max_results=5)`` answer with DDGS's results as indented JSON.

    WebSearchTools(requires_confirmation_tools=["web_search"])  # each web search waits for confirm()
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from hitl.tools._optional import require
from hitl.tools.toolkit import Toolkit

__all__ = ["WebSearchTools", "VALID_TIMELIMITS"]

log = logging.getLogger(__name__)

VALID_TIMELIMITS = frozenset({"d", "w", "m", "y"})
"""``timelimit``'s values: a day, a week, a month, a year."""


class WebSearchTools(Toolkit):
    """Searches the web with DDGS (Agno's ``WebSearchTools``).

    Args:
        enable_search: Offer ``web_search``.
        enable_news: Offer ``search_news``.
        backend: DDGS's engine(s): ``auto`` picks those available.
        modifier: Put before every ``web_search`` query (``site:example.com``, say).
        fixed_max_results: Return this many results whatever the model asks.
        proxy: A proxy for DDGS's requests.
        timeout: Seconds DDGS waits for an answer.
        verify_ssl: Check the engines' certificates.
        timelimit: Only results of the last day (``d``), week (``w``), month (``m``) or year (``y``).
        region: The results' region, e.g. ``us-en``.
        **kwargs: The :class:`~hitl.tools.Toolkit`'s (``requires_confirmation_tools``...).

    Raises:
        ImportError: the ``ddgs`` package is not installed.
        ValueError: a ``timelimit`` other than d, w, m or y.
    """

    def __init__(
        self,
        enable_search: bool = True,
        enable_news: bool = True,
        backend: str = "auto",
        modifier: str | None = None,
        fixed_max_results: int | None = None,
        proxy: str | None = None,
        timeout: int | None = 10,
        verify_ssl: bool = True,
        timelimit: Literal["d", "w", "m", "y"] | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        if timelimit is not None and timelimit not in VALID_TIMELIMITS:
            raise ValueError(f"WebSearchTools: timelimit {timelimit!r} is not one of 'd' (day), 'w' (week), "
                             "'m' (month), 'y' (year)")
        require("ddgs", "ddgs", "WebSearchTools")
        self.backend = backend
        self.modifier = modifier
        self.fixed_max_results = fixed_max_results
        self.proxy = proxy
        self.timeout = timeout
        self.verify_ssl = verify_ssl
        self.timelimit = timelimit
        self.region = region
        tools: list[Any] = []
        if enable_search:
            tools.append(self.web_search)
        if enable_news:
            tools.append(self.search_news)
        super().__init__(name="websearch", tools=tools, **kwargs)

    def _search(self, kind: str, query: str, max_results: int) -> str:
        ddgs = require("ddgs", "ddgs", "WebSearchTools")
        options: dict[str, Any] = {"query": query, "max_results": self.fixed_max_results or max_results,
                                   "backend": self.backend}
        if self.timelimit is not None:
            options["timelimit"] = self.timelimit
        if self.region is not None:
            options["region"] = self.region
        log.debug("searching %s for %r with %s", kind, query, self.backend)
        with ddgs.DDGS(proxy=self.proxy, timeout=self.timeout, verify=self.verify_ssl) as client:
            results = client.text(**options) if kind == "web" else client.news(**options)
        return json.dumps(results, indent=2, ensure_ascii=False)

    def web_search(self, query: str, max_results: int = 5) -> str:
        """Search the web.

        Args:
            query (str): What to search for.
            max_results (optional, default=5): How many results to return at most.

        Returns:
            The results found on the web.
        """
        return self._search("web", f"{self.modifier} {query}" if self.modifier else query, max_results)

    def search_news(self, query: str, max_results: int = 5) -> str:
        """Get the latest news.

        Args:
            query (str): What to search the news for.
            max_results (optional, default=5): How many results to return at most.

        Returns:
            The latest news found on the web.
        """
        return self._search("news", query, max_results)
