"""The relay benchmark runs end to end in its tiny mode and writes a well-formed report.

Only the shape and the honesty of the report are checked (every token of every stream was
delivered and counted); how fast anything was is for the benchmark itself, never a test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from bench.report import checks_of
from bench.scenarios import QUICK, TARGETS

FIGURES = ("ttft_ms_p50", "ttft_ms_p99", "chunk_latency_ms_p50", "chunk_latency_ms_p99")


def run_quick_benchmark(out: Path) -> list[Path]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quick", "--out", str(out)],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return sorted(out.iterdir())


def test_quick_benchmark_writes_json_markdown_and_chart(tmp_path):
    files = run_quick_benchmark(tmp_path)
    assert [path.suffix for path in files] == [".json", ".md", ".png"]
    assert len({path.stem for path in files}) == 1  # <date>-<machine>, one report

    results = json.loads(files[0].read_text())
    assert results["meta"]["cores"] >= 1 and results["meta"]["cpu"]
    assert [scenario["key"] for scenario in results["scenarios"]] == [s.key for s in QUICK]
    for scenario in results["scenarios"]:
        assert set(scenario["targets"]) == set(TARGETS)
        for target, figures in scenario["targets"].items():
            if "not_run" in figures:  # chatsite on several workers, without Redis or PostgreSQL
                assert target.startswith("chatsite") and scenario["workers"] > 1
                assert os.environ.get("CI") != "true", figures["not_run"]  # CI has both
                continue
            assert figures["failed_streams_total"] == 0, figures["errors"]
            assert figures["delivered_chunks"] == figures["expected_chunks"] > 0
            assert all(figures[name] is not None and figures[name] >= 0 for name in FIGURES)
            if target != "stub":
                # The kernel counts CPU in 10 ms ticks: a tiny floor run may round down to 0.
                assert figures["cpu_s_per_1000_chunks"] > 0 or target.startswith("floor")
                # Peak memory needs Linux's resettable high-water mark; elsewhere it is left out.
                if os.access("/proc/self/clear_refs", os.W_OK):  # Linux, unless restricted
                    assert isinstance(figures["memory_kb_per_stream"], float)
        chatsite = scenario["targets"]["chatsite"]
        if "not_run" not in chatsite:
            # The message POST stores both messages (one INSERT) and touches the conversation;
            # finishing the reply writes again.
            assert chatsite["sql_writes_per_reply"] >= 3
            assert chatsite["sql_select_per_reply"] >= 1
        for target in ("chatsite", "chatsite-v1"):
            figures = scenario["targets"][target]
            if "not_run" not in figures:
                # Read from the stored replies (how long, not how fast: no timed assertion).
                assert figures["reply_seconds"] > 0
        v1 = scenario["targets"]["chatsite-v1"]
        if "not_run" not in v1:
            # A new conversation and its messages (two INSERTs); finishing the reply writes again.
            assert v1["sql_insert_per_reply"] >= 2 and v1["sql_update_per_reply"] >= 1

    markdown = files[1].read_text()
    assert "| Scenario | Target |" in markdown
    assert all(scenario.title in markdown for scenario in QUICK)
    assert "## The issue's targets for chatsite" in markdown
    assert "## Against the floor on chatsite's HTTP transport" in markdown
    assert "| /v1: CPU per 1,000 chunks" in markdown  # the OpenAI-compatible endpoint's too
    assert f"]({files[2].name})" in markdown
    assert files[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_writes_bound_allows_a_checkpoint_a_second_of_replies_that_ran_late():
    def writes_check(figures: dict) -> dict:
        scenario = {"key": "k", "tokens": 100, "rate": 20.0, "targets": {"chatsite": figures}}
        return checks_of([scenario], "chatsite", "")[-1]

    # 5 s on schedule: 5 writes, the first-token save and 5 checkpoints.
    on_time = writes_check({"sql_writes_per_reply": 11.5, "reply_seconds": 5.2})
    assert on_time["target"].startswith("SQL writes per reply ≤ 11 ") and not on_time["met"]
    assert "replies lasting 5.2 s" in on_time["target"]
    late = writes_check({"sql_writes_per_reply": 11.5, "reply_seconds": 7.4})
    assert late["target"].startswith("SQL writes per reply ≤ 13 ") and late["met"]
    # Not measured (an older run's JSON): the schedule.
    assert writes_check({"sql_writes_per_reply": 10.0})["target"].startswith(
        "SQL writes per reply ≤ 11 "
    )
