"""``python -m bench.report``: pictures from whichever benchmark documents exist, clear errors for malformed ones."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from bench import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _ms(centre: float, n: int = 60) -> list[float]:
    rng = random.Random(centre)
    return [round(rng.lognormvariate(0, 0.25) * centre, 3) for _ in range(n)]


DOCUMENTS = {
    "resume_latency": {"fast_transfer": False, "runs": 60, "samples_ms": {
        "hitl resume (decision -> tool -> model -> end)": _ms(117),
        "hitl team resume (decision -> member's tool, model, end -> leader's model -> end)": _ms(320),
        "(a) bare signal -> activity -> result": _ms(103),
        "(b) bare update round trip": _ms(18),
        "(c) bare update -> eager remote tool -> local model": _ms(90)}},
    "service": {"samples_ms": {"hitl HTTP": _ms(70), "hitl Python": _ms(64), "(a) bare signal -> activity -> result": _ms(39),
                               "(b) bare update round trip": _ms(12)}, "extra": "tolerated"},
    "service_listing": {"listing": {"newest 20": {"http_rate": 8.9, "python_rate": 9.6, "http_p50": 718, "python_p50": 845},
                                    "status=pending": {"http_rate": 102.8, "python_rate": 173.9, "http_p50": 76,
                                                       "python_p50": 45}}},
    "scale-1000": {"runs": 1000, "cache": 200, "rates": {"hitl": 17.0, "(a)": 27.0}, "ratio": 0.63,
                   "rss_mib": [[0, 80.0], [1000, 95.5]], "pause_rate": 30.1},
    "scale-10000": {"runs": 10000, "cache": 200, "rates": {"hitl": 15.0, "(a)": 25.0}, "ratio": 0.6,
                    "rss_mib": [[0, 80.0], [10000, 101.0]], "pause_rate": 28.0},
    "workers": {"rates": {"1": {"hitl": 17, "(a)": 27}, "2": {"hitl": 19, "(a)": 28}, "3": {"hitl": 20, "(a)": 28}},
                "server_cpu_share": {"1": 0.45}},
    "approvals": {"queries": {"get_approvals(status='pending')": {"p50": 3.1, "p99": 9.5, "samples_ms": _ms(3)},
                              "filters run_id": {"p50": 0.4, "p99": 1.2, "samples_ms": _ms(0.4)}}, "goal_p99_ms": 20},
}


def _write(data: Path, names: list[str], **overrides: dict) -> None:
    data.mkdir(parents=True, exist_ok=True)
    for name in names:
        document = {"date": "2026-12-02", "command": f"python -m bench.{name} --runs 10", **DOCUMENTS[name]}
        (data / f"{name}.json").write_text(json.dumps(overrides.get(name, document)))


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_every_document_gives_its_picture(tmp_path: Path) -> None:
    """With every agreed document present, the three pictures are written as readable PNGs of a sensible size."""
    _write(tmp_path / "data", list(DOCUMENTS))
    written = report.report(tmp_path / "data", tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["audit.png", "latency.png", "throughput.png"]
    for path in written:
        width, height = _png_size(path)
        assert 600 <= width <= 3000 and 400 <= height <= 2000, (path, width, height)
        assert path.stat().st_size > 20_000, f"{path} is suspiciously small for a chart"


def test_missing_documents_are_skipped_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only resume_latency present: latency.png is drawn, the others are skipped and each absence is noted."""
    _write(tmp_path / "data", ["resume_latency"])
    written = report.report(tmp_path / "data", tmp_path / "out")
    assert [p.name for p in written] == ["latency.png"]
    assert not (tmp_path / "out" / "throughput.png").exists()
    out = capsys.readouterr().out
    for name in ("service", "scale-1000", "scale-10000", "workers", "approvals", "service_listing"):
        assert f"skipped {name}:" in out
    assert "skipped throughput.png" in out and "skipped audit.png" in out


def test_partial_throughput_data_still_draws(tmp_path: Path) -> None:
    """One scale document and no workers document still make a throughput picture."""
    _write(tmp_path / "data", ["scale-1000"])
    written = report.report(tmp_path / "data", tmp_path / "out")
    assert [p.name for p in written] == ["throughput.png"]
    _png_size(written[0])


@pytest.mark.parametrize(("name", "document", "complaint"), [
    ("resume_latency", {"samples_ms": {"hitl resume": "fast"}}, "'samples_ms.hitl resume' should be a list, found str"),
    ("resume_latency", {"samples_ms": {"(a)": []}}, "'samples_ms.(a)' should be a non-empty list of numbers"),
    ("resume_latency", {"samples": {}}, "missing 'samples_ms'"),
    ("scale-1000", {"runs": 1000, "rates": {"hitl": 17.0}}, "missing 'rates.(a)'"),
    ("workers", {"rates": {"1": {"hitl": "many", "(a)": 27}}}, "'rates.1.hitl' should be a number"),
    ("approvals", {"queries": {"q": {"p50": 1.0}}}, "missing 'queries.q.p99'"),
    ("service_listing", {"listing": []}, "'listing' should be an object"),
    ("service", [1, 2], "expected a JSON object"),
])
def test_a_malformed_document_is_a_clear_error_naming_its_file(tmp_path: Path, name: str, document: object,
                                                               complaint: str) -> None:
    """A document not in the agreed shape raises ReportError naming the file and what is wrong."""
    _write(tmp_path / "data", [name], **{name: document})
    with pytest.raises(report.ReportError) as raised:
        report.report(tmp_path / "data", tmp_path / "out")
    message = str(raised.value)
    assert str(tmp_path / "data" / f"{name}.json") in message
    assert complaint in message


def test_invalid_json_is_an_error_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bench.report --data DIR` exits 2 and names the file when a document is not JSON."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "workers.json").write_text("{not json")
    assert report.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]) == 2
    assert f"{tmp_path / 'data' / 'workers.json'}: not valid JSON" in capsys.readouterr().err
