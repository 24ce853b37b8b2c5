"""The benchmarks' last figures as pictures: hitl beside its floors, measured in the same run.

    python -m bench.report [--out DIR] [--data DIR]

Reads ``bench/data/<name>.json`` (written by each benchmark through ``bench.samples.save``) and
draws, into ``--out`` (default ``bench/``):

latency.png     the distribution (CDF) of each latency a benchmark kept, one panel per document
                (``resume_latency``, ``service``): hitl's rows in one colour, the floors (a), (b),
                (c) in greys.
throughput.png  decided runs/s, hitl against (a), at 1,000 and 10,000 paused runs (``scale-1000``,
                ``scale-10000``) and with 1, 2, 3 worker processes (``workers``), and the ratio
                hitl / (a) against the goal of 1.0.
audit.png       p50 and p99 of each audit query (``approvals``) against its goal, and the approvals
                listing over HTTP against the same query from Python (``service_listing``).

A document that does not exist is skipped with a note on stdout; one that is not the agreed shape
stops the report with an error naming its file. Each picture's caption names the date and the
command of the data it draws.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display: the report runs on servers and in tests

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from bench import samples  # noqa: E402

# One colour for hitl everywhere, greys for the floors, one colour for goals.
HITL = "#1f5fa8"
HITL_SHADES = [HITL, "#6fa3dc", "#0b2f5c", "#9cc3ea"]
FLOOR_GREYS = ["#4d4d4d", "#8c8c8c", "#b3b3b3", "#262626"]
FLOOR_STYLES = ["-", "--", ":", "-."]
GOAL = "#c0392b"
DPI = 110

LATENCY_DOCS = ["resume_latency", "service"]
SCALE_DOCS = ["scale-1000", "scale-10000"]


class ReportError(Exception):
    """A data document that cannot be drawn: not JSON, or not the agreed shape. The message names the file."""


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile, as ``bench.common.pct`` prints it (not imported: that module starts servers' code)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---- reading and checking the documents ----

class Document:
    """One ``<name>.json``: its content, and checked access that names the file when a field is wrong."""

    def __init__(self, path: Path, content: Any) -> None:
        if not isinstance(content, dict):
            raise ReportError(f"{path}: expected a JSON object, found {type(content).__name__}")
        self.path, self.content = path, content
        self.name = path.stem

    def caption(self) -> str:
        return f"{self.name}: {self.content.get('date', 'undated')} · {self.content.get('command', 'command not recorded')}"

    def get(self, *keys: str, kind: type | tuple[type, ...] = object) -> Any:
        value: Any = self.content
        for i, key in enumerate(keys):
            if not isinstance(value, dict) or key not in value:
                where = ".".join(keys[: i + 1])
                raise ReportError(f"{self.path}: missing {where!r} (expected the shape agreed for {self.name!r})")
            value = value[key]
        if not isinstance(value, kind):
            raise ReportError(f"{self.path}: {'.'.join(keys)!r} should be {_kind_name(kind)}, found {type(value).__name__}")
        return value

    def number(self, *keys: str) -> float:
        value = self.get(*keys)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReportError(f"{self.path}: {'.'.join(keys)!r} should be a number, found {value!r}")
        return float(value)

    def numbers(self, *keys: str) -> list[float]:
        values = self.get(*keys, kind=list)
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise ReportError(f"{self.path}: {'.'.join(keys)!r} should be a non-empty list of numbers (ms)")
        return [float(v) for v in values]


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load(data_dir: Path, name: str) -> Document | None:
    """The document ``name`` in ``data_dir``, or None (with a note on stdout) when that benchmark has not saved one."""
    path = data_dir / f"{name}.json"
    if not path.exists():
        print(f"skipped {name}: no {path} (its benchmark has not been run here)")
        return None
    try:
        return Document(path, json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from error


# ---- drawing ----

def _short(label: str) -> str:
    """A row label short enough for a legend: long hitl rows lose their parenthesised detail."""
    label = label.replace("->", "→")
    cut = label.find(" (", 1)
    return label[:cut] if len(label) > 48 and cut > 0 else label


def _is_floor(label: str) -> bool:
    return label.lstrip().startswith("(")  # the floors are the rows named (a), (b), (c)


def _finish(fig: Figure, title: str, docs: list[Document], out: Path) -> Path:
    """Title, a caption naming each document's date and command, then the PNG."""
    caption = "\n".join(textwrap.fill(doc.caption(), 160, subsequent_indent="    ") for doc in docs)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    fig.supxlabel("data — " + caption, x=0.01, ha="left", fontsize=7.5, color="#444444")
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    print(f"wrote {out}")
    return out


def draw_latency(docs: list[Document], out: Path) -> Path:
    """One panel per document: the CDF of every latency it kept, hitl's rows coloured, the floors grey."""
    fig, axes = plt.subplots(1, len(docs), figsize=(7.5 * len(docs), 5.2), squeeze=False, layout="constrained")
    for ax, doc in zip(axes[0], docs, strict=False):
        rows = doc.get("samples_ms", kind=dict)
        if not rows:
            raise ReportError(f"{doc.path}: 'samples_ms' has no rows")
        hitl_i = floor_i = 0
        for label in sorted(rows, key=_is_floor):  # hitl's rows first, then the floors, each as saved
            ms = sorted(doc.numbers("samples_ms", label))
            cdf = [(i + 1) / len(ms) for i in range(len(ms))]
            legend = f"{_short(label)}  p50 {pct(ms, 50):.1f} · p99 {pct(ms, 99):.1f} ms"
            if _is_floor(label):
                ax.step(ms, cdf, where="post", color=FLOOR_GREYS[floor_i % 4], linestyle=FLOOR_STYLES[floor_i % 4],
                        linewidth=1.6, label=legend)
                floor_i += 1
            else:
                ax.step(ms, cdf, where="post", color=HITL_SHADES[hitl_i % 4], linewidth=2.2, label=legend)
                hitl_i += 1
        for level in (0.5, 0.99):
            ax.axhline(level, color="#dddddd", linewidth=0.8, zorder=0)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of samples at or below")
        ax.set_ylim(0, 1.02)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 0.99])
        title = doc.name
        if isinstance(doc.content.get("fast_transfer"), bool):
            title += " — transfer poll " + ("raised" if doc.content["fast_transfer"] else "default (20/s)")
        if isinstance(doc.content.get("runs"), int):
            title += f", {doc.content['runs']} runs"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(0, -0.14), frameon=False)  # below: the curves stay clear
        ax.grid(True, which="major", axis="x", color="#eeeeee")
    return _finish(fig, "Latency: hitl (blue) beside its floors (grey), same run", docs, out)


def _rates(doc: Document, *keys: str) -> tuple[float, float]:
    return doc.number(*keys, "hitl"), doc.number(*keys, "(a)")


def _pair_bars(ax: Any, groups: list[str], pairs: list[tuple[float, float]], xlabel: str) -> None:
    """hitl and (a) side by side per group, the ratio above each pair."""
    width = 0.38
    xs = range(len(groups))
    ax.bar([x - width / 2 for x in xs], [h for h, _ in pairs], width, color=HITL, label="hitl")
    ax.bar([x + width / 2 for x in xs], [a for _, a in pairs], width, color=FLOOR_GREYS[1],
           label="(a) bare signal → activity → done")
    top = max(max(p) for p in pairs)
    for x, (h, a) in zip(xs, pairs, strict=True):
        ax.text(x, max(h, a) + top * 0.03, f"hitl/(a) {h / a:.2f}" if a else "(a) = 0", ha="center", fontsize=9)
    ax.set_xticks(list(xs), groups)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("decided runs / s")
    ax.set_ylim(0, top * 1.35)
    ax.legend(fontsize=8, loc="upper left", ncol=2, frameon=False)


def draw_throughput(scales: list[Document], workers: Document | None, out: Path) -> Path:
    """Runs/s beside (a) by paused runs and by worker processes, then every ratio against the goal."""
    panels = (1 if scales else 0) + (1 if workers else 0) + 1
    fig, axes = plt.subplots(1, panels, figsize=(5.4 * panels, 5), squeeze=False, layout="constrained")
    ax_iter = iter(axes[0])
    ratios: list[tuple[str, float]] = []
    if scales:
        ax = next(ax_iter)
        groups = [f"{int(doc.number('runs')):,} paused" for doc in scales]
        pairs = [_rates(doc, "rates") for doc in scales]
        _pair_bars(ax, groups, pairs, "runs paused at once, then all decided")
        ax.set_title("by paused runs (one worker each)", fontsize=10)
        ratios += [(f"{g}", h / a) for g, (h, a) in zip(groups, pairs, strict=True) if a]
    if workers:
        ax = next(ax_iter)
        rates = workers.get("rates", kind=dict)
        counts = sorted(rates, key=lambda k: float(k) if k.replace(".", "", 1).isdigit() else 0.0)
        pairs = [_rates(workers, "rates", count) for count in counts]
        _pair_bars(ax, counts, pairs, "worker processes")
        poll = workers.content.get("fast_transfer")
        ax.set_title("by worker processes" + (", transfer poll raised" if poll is True else ", default transfer poll"
                                              if poll is False else ""), fontsize=10)
        ratios += [(f"{c} worker{'s' if c != '1' else ''}", h / a) for c, (h, a) in zip(counts, pairs, strict=True) if a]
    ax = next(ax_iter)
    names = [name for name, _ in ratios]
    ax.barh(range(len(ratios)), [r for _, r in ratios], 0.55, color=HITL)
    for y, (_, r) in enumerate(ratios):
        ax.text(r, y, f" {r:.2f}", va="center", fontsize=9, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.axvline(1.0, color=GOAL, linestyle="--", linewidth=1.5, label="goal: hitl / (a) ≥ 1.0")
    ax.set_yticks(range(len(ratios)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max([1.2, *[r * 1.2 for _, r in ratios]]))
    ax.set_xlabel("hitl runs/s ÷ (a) runs/s, same run")
    ax.set_title("hitl / (a)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.12), frameon=False)
    docs = [*scales, *([workers] if workers else [])]
    return _finish(fig, "Throughput: decided runs per second, hitl (blue) beside (a) (grey)", docs, out)


def draw_audit(approvals: Document | None, listing: Document | None, out: Path) -> Path:
    """Audit queries' p50/p99 against their goal, and the listing over HTTP against Python."""
    panels = (1 if approvals else 0) + (1 if listing else 0)
    bars = max(len(approvals.get("queries", kind=dict)) if approvals else 0,
               len(listing.get("listing", kind=dict)) if listing else 0)
    height = max(5.4, 2.4 + 0.32 * bars)  # a row of bars stays readable however many queries there are
    fig, axes = plt.subplots(1, panels, figsize=(max(9.0, 7.2 * panels), height), squeeze=False, layout="constrained")
    ax_iter = iter(axes[0])
    if approvals:
        ax = next(ax_iter)
        queries = approvals.get("queries", kind=dict)
        labels = list(queries)
        p50 = [approvals.number("queries", q, "p50") for q in labels]
        p99 = [approvals.number("queries", q, "p99") for q in labels]
        ys = range(len(labels))
        ax.barh([y + 0.2 for y in ys], p50, 0.4, color=HITL_SHADES[1], label="p50")
        ax.barh([y - 0.2 for y in ys], p99, 0.4, color=HITL, label="p99")
        goal = approvals.content.get("goal_p99_ms")
        if isinstance(goal, (int, float)) and not isinstance(goal, bool):
            ax.axvline(goal, color=GOAL, linestyle="--", linewidth=1.5, label=f"goal: p99 ≤ {goal:g} ms")
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.invert_yaxis()  # first query on top, p99 above p50 within each
        log = max(p99) > 50 * max(min(p50), 0.01)  # one slow query would flatten the others to nothing
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("query time (ms" + (", log scale)" if log else ")"))
        rows = approvals.content.get("rows")
        ax.set_title("audit queries" + (f" over {rows:,} records" if isinstance(rows, int) else ""), fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.1), ncol=3, frameon=False)
    if listing:
        ax = next(ax_iter)
        cases = listing.get("listing", kind=dict)
        labels = list(cases)
        http = [listing.number("listing", c, "http_rate") for c in labels]
        python = [listing.number("listing", c, "python_rate") for c in labels]
        ys = range(len(labels))
        ax.barh([y - 0.2 for y in ys], http, 0.4, color=HITL, label="HTTP: GET /approvals (hitl serve)")
        ax.barh([y + 0.2 for y in ys], python, 0.4, color=FLOOR_GREYS[1], label="Python: db.get_approvals")
        top = max(http + python)
        for y, c, h, p in zip(ys, labels, http, python, strict=True):
            ax.text(h, y - 0.2, f" p50 {listing.number('listing', c, 'http_p50'):.0f} ms"
                                + (f" · HTTP/Python {h / p:.2f}" if p else ""), va="center", fontsize=8)
            ax.text(p, y + 0.2, f" p50 {listing.number('listing', c, 'python_p50'):.0f} ms", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.55)
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("requests / s (8 clients at once)")
        ax.set_title("approvals listing: HTTP beside Python", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.1), ncol=3, frameon=False)
    docs = [d for d in (approvals, listing) if d]
    return _finish(fig, "The audit trail at size", docs, out)


def report(data_dir: Path = samples.DATA, out_dir: Path = samples.DATA.parent) -> list[Path]:
    """Draw every picture whose data exists; returns the PNGs written. Raises ReportError for a malformed document."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _draw_all(data_dir, out_dir)
    finally:
        plt.close("all")  # a document found malformed mid-picture leaves no figure behind


def _draw_all(data_dir: Path, out_dir: Path) -> list[Path]:
    written: list[Path] = []
    latency = [doc for doc in (load(data_dir, name) for name in LATENCY_DOCS) if doc]
    if latency:
        written.append(draw_latency(latency, out_dir / "latency.png"))
    else:
        print("skipped latency.png: no latency document")
    scales = [doc for doc in (load(data_dir, name) for name in SCALE_DOCS) if doc]
    workers = load(data_dir, "workers")
    if scales or workers:
        written.append(draw_throughput(scales, workers, out_dir / "throughput.png"))
    else:
        print("skipped throughput.png: no scale or workers document")
    approvals, listing = load(data_dir, "approvals"), load(data_dir, "service_listing")
    if approvals or listing:
        written.append(draw_audit(approvals, listing, out_dir / "audit.png"))
    else:
        print("skipped audit.png: no approvals or service_listing document")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=samples.DATA.parent, help="where the PNGs go (default: bench/)")
    parser.add_argument("--data", type=Path, default=samples.DATA, help="where the documents are (default: bench/data/)")
    args = parser.parse_args(argv)
    try:
        report(args.data, args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
