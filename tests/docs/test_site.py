"""The manual: built strictly, then opened page by page in Debian's chromium (Playwright).

Every page loads without a console error and without a request leaving this machine; search finds
"approval"; the generated references hold what the code declares. With HITL_SCREENSHOTS=1 the
screenshots of three pages are also written into docs/.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from hitl import errors
from hitl.settings import Environment

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import mkdocs_hooks  # noqa: E402  (mkdocs loads it by path; so do the tests)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as `python dev.py docs` builds it (strict), into a folder of the test's own."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass



def _pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if p.name != "404.html")


async def test_every_page_loads_offline_without_a_console_error(site, served, browser):
    """Each page of the nav answers, logs no console error, and asks nothing of another host."""
    pages = _pages(site)
    assert len(pages) >= 30, pages
    context = await browser.new_context()
    outside: list[str] = []
    problems: list[str] = []
    context.on("request", lambda request: outside.append(request.url)
               if urlsplit(request.url).hostname not in ("127.0.0.1", None) and not request.url.startswith("data:") else None)
    page = await context.new_page()
    page.on("console", lambda message: problems.append(f"{page.url}: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    for path in pages:
        answer = await page.goto(f"{served}/{path}")
        assert answer is not None and answer.ok, path
        await expect(page.locator("h1").first).to_be_visible()
    await context.close()
    assert not outside, f"requests that left this machine: {sorted(set(outside))[:10]}"
    assert not problems, problems[:10]


async def test_search_finds_approval(served, browser, tmp_path):
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{served}/index.html")
    await page.locator("label.md-search__icon, .md-search__input").first.click()
    await page.locator("input.md-search__input").fill("approval")
    results = page.locator(".md-search-result__item")
    # The index loads in a worker, then results render: several pages mention approvals.
    await expect(results.nth(3)).to_be_visible(timeout=15_000)
    await page.context.close()


async def test_screenshots_of_home_a_guide_and_the_http_reference(served, browser, tmp_path):
    """Three pages as a reader sees them (into docs/ with HITL_SCREENSHOTS=1, for the note and the site)."""
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    for name, path, heading in [("site-home", "index.html", "hitl"),
                                ("site-guide", "guides/rest-api.html", "REST API"),
                                ("site-http-reference", "reference/http.html", "HTTP API")]:
        await page.goto(f"{served}/{path}")
        await expect(page.locator("h1").first).to_contain_text(heading)
        shot = tmp_path / f"{name}.png"
        await page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("HITL_SCREENSHOTS"):
            shutil.copy(shot, ROOT / "docs" / "assets" / f"{name}.png")
    await page.context.close()


# --------------------------------------------------------------------------- the generated references
def test_the_configuration_reference_lists_every_variable():
    text = mkdocs_hooks.configuration_reference()
    for name, field in Environment.model_fields.items():
        assert f"`{field.alias}`" in text, name


def test_the_errors_reference_has_every_error_and_its_status():
    text = mkdocs_hooks.errors_reference()
    for name in errors.__all__:
        assert f"| `{name}` |" in text, name
    assert "| `RunNotFoundError` | 404 Not found |" in text
    assert "| `RequirementAlreadyResolvedError` | 409 Conflict |" in text


def test_the_http_reference_has_every_route_of_the_service():
    from hitl.service.app import create_app

    text = mkdocs_hooks.http_reference()
    document = create_app(database_url=mkdocs_hooks.SERVICE_DATABASE_URL).openapi()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in text


def test_every_diagram_is_drawn_and_shown_on_a_page(site):
    """Each text in docs/diagrams/ becomes an SVG in the site, and some page shows it."""
    shown = "".join(p.read_text() for p in site.rglob("*.html"))
    sources = sorted((ROOT / "docs" / "diagrams").glob("*.txt"))
    assert len(sources) >= 3
    assert not (site / "diagrams").exists(), "the diagrams' text is published beside their drawings"
    for source in sources:
        svg = site / "assets" / "diagrams" / f"{source.stem}.svg"
        assert svg.read_text().startswith("<svg") and svg.stat().st_size > 2_000, source.name
        assert f"assets/diagrams/{source.stem}.svg" in shown, f"no page shows {source.stem}"


def test_the_cli_reference_has_every_command():
    import typer.main

    from hitl.cli import app

    text = mkdocs_hooks.cli_reference()

    def walk(command, path, parent):
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        for option in (o for p in command.params if p.param_type_name == "option" for o in p.opts):
            if option != "--help":
                assert f"`{option}`" in text, f"{' '.join(path)} {option}"
        for name in getattr(command, "list_commands", lambda _: [])(ctx):
            assert f"`{' '.join([*path, name])}`" in text, name
            walk(command.get_command(ctx, name), [*path, name], ctx)

    walk(typer.main.get_command(app), ["hitl"], None)
