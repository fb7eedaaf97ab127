"""The benchmark's smoke run: every part of `make bench`, tiny, so that it cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buurtsignaal.bot import bench


async def test_smoke_run_measures_every_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # the reminder meets 429s; PTB warns otherwise
    options = bench.Options(
        residents=2,
        latency_ms=2,
        reminder_recipients=12,
        think_ms=100,
        signals=(200, 600),
        rss_residents=10,
        json_path=tmp_path / "bench.json",
        workdir=tmp_path,
    )
    results = await bench.run(options)

    for key in ("loop_latency", "loop_no_latency"):
        loop = results[key]
        # Every resident finished the whole /melden flow; the echo bot answered every step.
        assert loop["bot"]["flows"] == 2 and loop["bot"]["failures"] == 0
        assert loop["bot"]["steps"] == 2 * len(bench.MELDEN)
        assert loop["echo"]["steps"] == 2 * len(bench.MELDEN)
        assert loop["bot"]["chat_calls_per_step"] > 0
    reminder = results["reminder"]
    assert reminder["lost"] == 0 and reminder["doubled"] == 0
    assert reminder["residents"]["steps"] >= 2
    assert reminder["residents"]["failures"] == 0
    digest = results["digest"]
    assert set(digest) == {"200", "600", "ratio"}
    assert results["memory"]["residents"] == 10 and results["memory"]["peak_rss_mb"] > 0

    text = bench.table(results)
    for heading in ("Closed loop", "Reminder to 12", "Digest and hotspot check", "Memory"):
        assert heading in text
    # Each part's time, and what the memory part really ran beside (from when each ran).
    assert set(results["spans"]) == set(results["timings"])
    for name, (began, ended) in results["spans"].items():
        assert 0 <= began <= ended <= results["seconds"], name
    assert "Time per part (s)" in text
    assert options.json_path is not None
    bench.write_json(results, options.json_path)
    assert json.loads(options.json_path.read_text())["reminder"]["recipients"] == 12


def test_the_table_says_what_the_memory_part_ran_beside() -> None:
    """Only the parts whose time overlapped the memory part's (by more than a second) are
    named: a part that began after it ended is not."""
    spans = {
        "loop_latency": [0.0, 13.4],
        "reminder": [22.3, 216.2],
        "memory": [22.3, 254.3],
        "reminder_quiet": [216.2, 297.0],
        "digest": [297.0, 309.6],
    }
    assert bench._beside(spans, "memory") == ["reminder", "reminder_quiet"]
    assert bench._beside({"memory": [0.0, 5.0]}, "memory") == []
    assert bench._beside({}, "memory") == []
