"""The site's generated pages, built from the code each time the site is built (never kept by hand).

- ``reference/http.md``: the decision service's OpenAPI document, rendered into the page (nothing is
  fetched when the page is viewed).
- ``reference/cli.md``: every ``hitl`` command, from the typer app.
- ``reference/configuration.md``: every field of :class:`hitl.settings.Environment`.
- ``reference/errors.md``: the error tree, each error's meaning and the HTTP status the service answers it with.
- ``concepts/bench-results.md`` and ``assets/bench/*.png``: the benchmarks' own results and figures.
- ``assets/diagrams/*.svg``: the diagrams, drawn from their text in docs/diagrams/ (nothing is fetched
  to render them).

mkdocs loads this file by path (``hooks:`` in mkdocs.yml); ``pages()`` is what the tests read too.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SERVICE_DATABASE_URL = "postgresql://docs@127.0.0.1:9/none"  # never connected: the app is only asked its OpenAPI document


# --------------------------------------------------------------------------- mkdocs entry points
def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    for figure in sorted((ROOT / "bench").glob("*.png")):
        files.append(File.generated(config, f"assets/bench/{figure.name}", abs_src_path=str(figure)))
    for source in sorted((ROOT / "docs" / "diagrams").glob("*.txt")):
        files.append(File.generated(config, f"assets/diagrams/{source.stem}.svg", content=diagram_svg(source.read_text())))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """``{{ bench.NAME }}`` in a page becomes that figure of the bench's data files (bench/data/)."""
    if "{{ bench." not in markdown:
        return markdown
    figures = bench_figures()

    def figure(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in figures:
            raise KeyError(f"{page.file.src_path}: no bench figure {name!r} (known: {', '.join(sorted(figures))})")
        return figures[name]

    return re.sub(r"\{\{ bench\.(\w+) \}\}", figure, markdown)


# --------------------------------------------------------------------------- the pages
def pages() -> dict[str, str]:
    """Every generated page, by its path under docs/."""
    return {
        "reference/http.md": http_reference(),
        "reference/cli.md": cli_reference(),
        "reference/configuration.md": configuration_reference(),
        "reference/errors.md": errors_reference(),
        "concepts/bench-results.md": bench_results(),
    }


def _cell(text: Any) -> str:
    """Text for one table cell: one line, pipes escaped, ``<name>`` shown (not taken for HTML) outside code."""
    parts = " ".join(str(text or "").split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def _anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


# --------------------------------------------------------------------------- HTTP
def http_reference() -> str:
    from hitl.service.app import create_app
    from hitl.service.errors import MEANINGS

    document = create_app(database_url=SERVICE_DATABASE_URL).openapi()
    schemas = document.get("components", {}).get("schemas", {})
    out = [
        "# HTTP API",
        "",
        f"The decision service (`hitl serve`), version {document['info'].get('version', '')}: every route, its",
        "parameters, its body and its answers, generated from the service's own OpenAPI document when this site",
        "is built. A running service serves the same document at `/openapi.json` and an explorer at `/docs`.",
        "Errors are RFC 9457 problem documents (`application/problem+json`, [Problem](#schema-Problem)).",
        "",
        "## Status codes",
        "",
        "| status | meaning |",
        "|---|---|",
        *(f"| {code} | {_cell(text)} |" for code, text in sorted(MEANINGS.items())),
        "",
    ]
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in document["paths"].items():
        group = path.strip("/").split("/")[0] or "/"
        for method, operation in operations.items():
            groups.setdefault(group, []).append((method.upper(), path, operation))
    for group, operations in groups.items():
        out += [f"## /{group}", ""]
        for method, path, operation in operations:
            out += _operation(method, path, operation)
    out += ["## Schemas", ""]
    for name, schema in schemas.items():
        out += _schema(name, schema)
    return "\n".join(out) + "\n"


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{_anchor(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " \\| ".join(_type(s) for s in schema[key])
    if "enum" in schema:
        return " \\| ".join(f"`{v!r}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']!r}`"
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object":
        extra = schema.get("additionalProperties")
        return f"object[str, {_type(extra)}]" if isinstance(extra, dict) and extra else "object"
    if kind is None:
        return "any"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    out = [f"### `{method} {path}`", ""]
    if operation.get("summary"):
        out += [f"**{operation['summary']}**", ""]
    if operation.get("description"):
        out += [inspect.cleandoc(operation["description"]), ""]
    security = operation.get("security")
    if security:
        names = sorted({name for requirement in security for name in requirement})
        out += [f"Authentication: {', '.join(names)}.", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        out += ["| parameter | in | type | required | |", "|---|---|---|---|---|"]
        for p in parameters:
            out.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | {'yes' if p.get('required') else ''} | "
                       f"{_cell(p.get('description') or p.get('schema', {}).get('description'))} |")
        out.append("")
    body = operation.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            out += [f"Body ({media}): {_type(content.get('schema', {}))}" + (" (required)" if body.get("required") else ""), ""]
    responses = sorted(operation.get("responses", {}).items())
    answers = [(status, response) for status, response in responses if not status.startswith(("4", "5"))]
    if answers:
        out += ["| answer | | body |", "|---|---|---|"]
        for status, response in answers:
            media = response.get("content", {})
            shape = ", ".join(_type(c.get("schema", {})) if c.get("schema") else media_type for media_type, c in media.items())
            out.append(f"| {status} | {_cell(response.get('description'))} | {shape} |")
        out.append("")
    refusals = [status for status, _ in responses if status.startswith(("4", "5"))]
    if refusals:
        out += [f"Refusals: {', '.join(refusals)} ([what each means](#status-codes)), as [Problem](#schema-Problem).", ""]
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f"### {name} {{#schema-{_anchor(name)}}}", ""]
    if schema.get("description"):
        out += [inspect.cleandoc(schema["description"]), ""]
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", []))
        out += ["| field | type | required | |", "|---|---|---|---|"]
        for field, spec in properties.items():
            out.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else ''} | {_cell(spec.get('description'))} |")
        out.append("")
    elif "enum" in schema:
        out += [f"One of: {_type(schema)}.", ""]
    else:
        out += [f"Type: {_type(schema)}.", ""]
    return out


# --------------------------------------------------------------------------- CLI
def cli_reference() -> str:
    import typer.main

    from hitl.cli import app

    root = typer.main.get_command(app)
    out = ["# CLI", "", "Every `hitl` command and option, generated from the command itself when this site is built",
           "(`hitl COMMAND --help` prints the same).", ""]

    # Typer carries its own copy of click: its objects are read by what they have, not by click's classes.
    def walk(command: Any, path: list[str], parent: Any) -> None:
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        if len(path) > 1:
            out.extend([f"{'#' * min(len(path), 4)} `{' '.join(path)}`", ""])
        if command.help:
            out.extend([_clean_help(command.help), ""])
        pieces = " ".join(command.collect_usage_pieces(ctx))
        out.extend(["```text", f"{' '.join(path)} {pieces}".rstrip(), "```", ""])
        params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
        if params:
            out.extend(["| | | default |", "|---|---|---|"])
            for param in params:
                names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
                if param.param_type_name == "argument":
                    names = f"`{(param.metavar or param.name or '').upper()}` (argument)"
                default = param.default if not callable(param.default) and param.default not in (None, (), []) else ""
                if getattr(param, "is_flag", False) and default is False:
                    default = ""
                out.append(f"| {names} | {_cell(_clean_help(getattr(param, 'help', '') or ''))} | "
                           f"{_cell(f'`{default}`' if default != '' else '')} |")
            out.append("")
        if hasattr(command, "list_commands"):
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], ctx)

    walk(root, ["hitl"], None)
    return "\n".join(out) + "\n"


def _clean_help(text: str) -> str:
    """Typer's help text for Markdown: rich markup out, its paragraph breaks kept."""
    text = re.sub(r"\[/?(bold|b|i|italic|dim|code|red|green|yellow)\]", "", inspect.cleandoc(text))
    return text.replace("\b\n", "")


# --------------------------------------------------------------------------- configuration
def configuration_reference() -> str:
    from hitl.settings import Environment

    out = [
        "# Configuration",
        "",
        "Every environment variable hitl reads: the fields of `hitl.settings.Environment`, generated from it when this",
        "site is built. " + _first_paragraph(Environment.__doc__),
        "",
        "| variable | type | default | |",
        "|---|---|---|---|",
    ]
    for name, field in Environment.model_fields.items():
        variable = field.alias or name.upper()
        kind = _annotation(field.annotation)
        # A variable whose default is decided where it is used says so in its doc: "(default 64)".
        said = re.search(r"\bdefault:? ([^;),]+)", field.description or "")
        default = f"`{field.default}`" if field.default is not None else (f"`{said.group(1).strip()}`" if said else "")
        out.append(f"| `{variable}` | {kind} | {default} | {_cell(field.description)} |")
    out += ["", "How each is used, with examples: [Configuration](../operate/configuration.md).", ""]
    return "\n".join(out) + "\n"


def _annotation(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not hasattr(annotation, "__args__") else None
    text = text or str(annotation).replace("typing.", "").replace("pydantic.types.", "")
    return f"`{text.replace('NoneType', 'None')}`".replace("|", "\\|")


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc or "").split("\n\n")[1:2]).replace("\n", " ").replace("``", "`")


# --------------------------------------------------------------------------- errors
def errors_reference() -> str:
    from hitl import errors
    from hitl.service.errors import TITLES, status_of

    out = ["# Errors", "", "Every error hitl raises is a `hitl.errors.HitlError`; the decision service answers each with one",
           "status, in an RFC 9457 problem document. Generated from `hitl.errors` and the service's mapping when this",
           "site is built.", "", "```text"]

    def tree(cls: type, prefix: str, last: bool, top: bool) -> None:
        out.append(cls.__name__ if top else f"{prefix}{'└── ' if last else '├── '}{cls.__name__}")
        children = sorted(_public_subclasses(cls, errors), key=lambda c: c.__name__)
        for i, child in enumerate(children):
            tree(child, prefix if top else prefix + ("    " if last else "│   "), i == len(children) - 1, False)

    tree(errors.HitlError, "", True, True)
    out += ["```", "", "| error | HTTP | meaning |", "|---|---|---|"]
    for cls in _walk(errors.HitlError, errors):
        status = status_of(cls("x"))
        out.append(f"| `{cls.__name__}` | {status} {TITLES.get(status, '')} | {_cell(_first_line(cls.__doc__))} |")
    out.append("")
    return "\n".join(out) + "\n"


def _public_subclasses(cls: type, module: Any) -> list[type]:
    return [c for c in cls.__subclasses__() if c.__module__ == module.__name__ and not c.__name__.startswith("_")]


def _walk(cls: type, module: Any) -> Iterable[type]:
    yield cls
    for child in sorted(_public_subclasses(cls, module), key=lambda c: c.__name__):
        yield from _walk(child, module)


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc or "").split("\n\n")[0].replace("``", "`")


# --------------------------------------------------------------------------- benchmarks
def bench_results() -> str:
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    fix: Callable[[re.Match[str]], str] = lambda m: f"]({'../assets/bench/' + m.group(1)})"  # noqa: E731
    text = re.sub(r"\]\((?:\./)?([\w.-]+\.png)\)", fix, text)
    # Other links from RESULTS.md point into the repository: shown as paths, not broken links.
    text = re.sub(r"(?<!!)\[([^\]]*)\]\((?!https?:|#|\.\./assets/)([^)]+)\)", r"\1 (`\2`)", text)
    return "<!-- generated from bench/RESULTS.md when the site is built -->\n" + text


def bench_figures() -> dict[str, str]:
    """The figures the pages quote, computed from the bench's data files, each with the run that measured it."""
    import json
    import statistics

    def data(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((ROOT / "bench" / "data" / f"{name}.json").read_text())
        return loaded

    scale, audited, large = data("scale-1000"), data("scale-1000-audit"), data("scale-10000")
    resume, approvals = data("resume_latency"), data("approvals")
    samples = resume["samples_ms"]
    floor_a = statistics.median(next(v for k, v in samples.items() if k.startswith("(a)")))
    agent = statistics.median(next(v for k, v in samples.items() if k.startswith("hitl resume")))
    team = statistics.median(next(v for k, v in samples.items() if k.startswith("hitl team")))
    slowest_query = max(q["p99"] for q in approvals["queries"].values())

    def measured(d: dict[str, Any]) -> str:
        return f"{d['date']}, `{d['command']}`"

    return {
        "throughput_1000": f"{scale['ratio']:.2f}",
        "throughput_1000_measured": measured(scale),
        "throughput_1000_audit": f"{audited['ratio']:.2f}",
        "throughput_1000_audit_measured": measured(audited),
        "throughput_10000": f"{large['ratio']:.2f}",
        "throughput_10000_measured": measured(large),
        "memory_10000_mib": f"{large['rss_mib'][-1][1]:.0f}",
        "memory_growth_10000_percent": f"{100 * large['rss_growth_from_1000']:.0f}",
        "resume_agent_ms": f"{agent:.0f}",
        "resume_agent_ratio": f"{agent / floor_a:.2f}",
        "resume_team_ratio": f"{team / floor_a:.2f}",
        "resume_measured": measured(resume),
        "audit_rows": f"{approvals['rows']:,}",
        "audit_slowest_p99_ms": f"{slowest_query:.0f}",
        "audit_measured": measured(approvals),
    }


# --------------------------------------------------------------------------- diagrams
_FONT = "font-family='-apple-system, Segoe UI, Helvetica, Arial, sans-serif' font-size='13'"
_INK, _BOX, _LINE, _NOTE = "#1f2937", "#e8eaf6", "#3f51b5", "#fff8e1"


def _x(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='100%' role='img'>"
            f"<title>{_x(title)}</title><defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' "
            f"markerWidth='7' markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{_LINE}'/>"
            f"</marker></defs><rect width='{width}' height='{height}' fill='white'/>" + "".join(body) + "</svg>")


def diagram_svg(text: str) -> str:
    """An SVG drawn from a diagram's text: a sequence (``participants:`` and ``A -> B: message`` lines) or
    rows of boxes (``row: A | B`` lines and ``A -> B: label`` arrows). ``#`` starts a comment; the first
    comment is the diagram's title."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = next((line.lstrip("# ").split(":")[0] for line in lines if line.startswith("#")), "diagram")
    lines = [line for line in lines if not line.startswith("#")]
    if lines and lines[0].startswith("participants:"):
        return _sequence(lines, title)
    return _rows(lines, title)


def _split_message(line: str, names: list[str]) -> tuple[str, str, str]:
    """``A -> B: label`` where A and B are known names that may hold ': ' themselves."""
    source = next(n for n in sorted(names, key=len, reverse=True) if line.startswith(n + " -> "))
    rest = line[len(source) + 4:]
    target = next(n for n in sorted(names, key=len, reverse=True) if rest == n or rest.startswith(n + ": "))
    return source, target, rest[len(target) + 2:].strip()


def _sequence(lines: list[str], title: str) -> str:
    names = [p.strip() for p in lines[0].split(":", 1)[1].split("|")]
    column, top, step = 230, 70, 44
    x = {name: column // 2 + i * column for i, name in enumerate(names)}
    body: list[str] = []
    y = top + 30
    for line in lines[1:]:
        if line.startswith("note "):
            who, note = line[5:].split(": ", 1)
            body.append(f"<rect x='{x[who.strip()] - 110}' y='{y - 16}' width='{column * 2 - 20}' height='26' rx='4' "
                        f"fill='{_NOTE}' stroke='#f0c36d'/><text x='{x[who.strip()] - 100}' y='{y + 2}' {_FONT} "
                        f"fill='{_INK}' font-style='italic'>{_x(note)}</text>")
        else:
            source, target, label = _split_message(line, names)
            x1, x2 = x[source], x[target]
            body.append(f"<line x1='{x1}' y1='{y}' x2='{x2}' y2='{y}' stroke='{_LINE}' stroke-width='1.6' "
                        f"marker-end='url(#arrow)'/><text x='{min(x1, x2) + 8}' y='{y - 7}' {_FONT} fill='{_INK}'>"
                        f"{_x(label)}</text>")
        y += step
    height = y + 10
    heads = []
    for name in names:
        heads.append(f"<line x1='{x[name]}' y1='{top}' x2='{x[name]}' y2='{height - 10}' stroke='#9ca3af' "
                     f"stroke-dasharray='4 4'/><rect x='{x[name] - 100}' y='14' width='200' height='{top - 24}' rx='6' "
                     f"fill='{_BOX}' stroke='{_LINE}'/><text x='{x[name]}' y='{top / 2 + 8}' {_FONT} font-weight='600' "
                     f"text-anchor='middle' fill='{_INK}'>{_x(name)}</text>")
    return _svg(column * len(names), height, heads + body, title)


def _rows(lines: list[str], title: str) -> str:
    rows = [[b.strip() for b in line.split(":", 1)[1].split("|")] for line in lines if line.startswith("row:")]
    names = [name for row in rows for name in row]
    arrows = [line for line in lines if not line.startswith("row:")]
    width, box, gap, margin = 1000, 44, (46 if arrows else 10), 20
    where: dict[str, tuple[float, float, float]] = {}  # name: (centre x, top y, bottom y)
    body: list[str] = []
    for r, row in enumerate(rows):
        top = margin + r * (box + gap)
        slot = (width - 2 * margin) / len(row)
        for i, name in enumerate(row):
            left = margin + i * slot + 8
            where[name] = (left + (slot - 16) / 2, top, top + box)
            body.append(f"<rect x='{left:.0f}' y='{top}' width='{slot - 16:.0f}' height='{box}' rx='6' fill='{_BOX}' "
                        f"stroke='{_LINE}'/><text x='{left + (slot - 16) / 2:.0f}' y='{top + box / 2 + 5}' {_FONT} "
                        f"text-anchor='middle' fill='{_INK}'>{_x(name)}</text>")
    for line in arrows:
        source, target, label = _split_message(line, names)
        (x1, t1, b1), (x2, t2, b2) = where[source], where[target]
        if t1 == t2:  # side by side: from one box's edge to the other's, at mid-height
            half = (x2 - x1) / abs(x2 - x1) * (width - 2 * margin) / (2 * len(next(r for r in rows if source in r)))
            x1, x2, y1, y2 = x1 + half - 8 * (half / abs(half)), x2 - half + 8 * (half / abs(half)), t1 + box / 2, t2 + box / 2
            body.append(f"<line x1='{x1:.0f}' y1='{y1}' x2='{x2:.0f}' y2='{y2}' stroke='{_LINE}' stroke-width='1.6' "
                        f"marker-end='url(#arrow)'/>")
            continue
        y1, y2 = (b1, t2) if t2 > t1 else (t1, b2)
        body.append(f"<line x1='{x1:.0f}' y1='{y1}' x2='{x2:.0f}' y2='{y2}' stroke='{_LINE}' stroke-width='1.6' "
                    f"marker-end='url(#arrow)'/>")
        if label:
            body.append(f"<text x='{(x1 + x2) / 2 + 6:.0f}' y='{(y1 + y2) / 2 + 4:.0f}' {_FONT} fill='#4b5563'>"
                        f"{_x(label)}</text>")
    return _svg(width, margin * 2 + len(rows) * (box + gap) - gap, body, title)
