"""The report: the machine, the issue's targets checked, a Markdown table, JSON and a chart."""

import json
import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psutil

from bench.charts import draw
from bench.scenarios import CHATSITE, FLOORS
from bench.stats import ratio, versus_key

# (what the issue asks, scenario key, where the figure is, figure, limit, "max" or "min")
TARGETS = (
    ("CPU per 1,000 chunks ≤ 1.5x floor (100 streams)", "100x200-50tps-ramp",
     "vs", "cpu_ratio", 1.5, "max"),
    ("CPU per 1,000 chunks ≤ 1.5x floor (500 streams)", "500x100-20tps",
     "vs", "cpu_ratio", 1.5, "max"),
    ("Time to first token p50 ≤ floor + 5 ms (1 stream)", "1x200-fast",
     "vs", "ttft_ms_p50_over_floor", 5.0, "max"),
    ("Chunk latency p99 ≤ floor + 20 ms (100 streams over 2 s)", "100x200-50tps-ramp",
     "vs", "chunk_latency_ms_p99_over_floor", 20.0, "max"),
    ("Added time to first token p50 ≤ 3x floor's (100 at once)", "100x200-50tps-burst",
     "vs", "added_ttft_p50_ratio", 3.0, "max"),
    ("No failed stream (500 streams)", "500x100-20tps",
     "chatsite", "failed_streams_total", 0, "max"),
    ("Chunks per second ≥ 90 % of floor's (500 streams)", "500x100-20tps",
     "vs", "chunks_per_s_ratio", 0.9, "min"),
    ("Memory ≤ 150 KB per concurrent stream (500 streams)", "500x100-20tps",
     "chatsite", "memory_kb_per_stream", 150.0, "max"),
)  # fmt: skip
# The writes of a reply on schedule, before its checkpoints: /v1's 5 (the conversation, then its
# messages, at the POST; the reply and the conversation at the end); the chat path writes 4 (the
# message and the reply in one INSERT, the conversation's touch; the same two at the end).
WRITES_CONSTANT = 5
# How each chatsite target's lines are named: the chat path's plainly, the endpoint's marked.
TARGET_NAMES = {"chatsite": "", "chatsite-v1": "/v1: "}


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: version(name)
            for name in ("django", "daphne", "uvloop", "twisted", "httpx", "aiohttp")
        },
        "commit": git("rev-parse", "--short", "HEAD")
        + ("+changes" if git("status", "--porcelain") else ""),
    }


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def check_targets(results: dict) -> list[dict]:
    """The issue's targets for each chatsite target (the chat path, then the /v1 endpoint)."""
    checks = []
    for target, name in TARGET_NAMES.items():
        if any(target in scenario["targets"] for scenario in results["scenarios"]):
            checks += checks_of(results["scenarios"], target, name)
    return checks


def checks_of(scenarios: list[dict], target: str, name: str) -> list[dict]:
    by_key = {scenario["key"]: scenario for scenario in scenarios}
    checks = []
    for label, key, where, figure, limit, kind in TARGETS:
        scenario = by_key.get(key)
        value = None
        if scenario:
            figures = scenario["targets"].get(target, {})
            source = scenario.get(versus_key(target), {}) if where == "vs" else figures
            value = source.get(figure)
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        checks.append({"target": name + label, "scenario": key, "value": value, "met": met})
    for scenario in scenarios:
        chatsite = scenario["targets"].get(target, {})
        writes = chatsite.get("sql_writes_per_reply")
        # The first-token save, then a checkpoint a second of the replies' life: as scheduled,
        # or as long as they lasted when load made them late (bench/chatdb.py, reply_seconds).
        scheduled = scenario["tokens"] / scenario["rate"] if scenario["rate"] else 0
        seconds = max(scheduled, chatsite.get("reply_seconds") or 0)
        bound = WRITES_CONSTANT + 1 + int(seconds)
        if chatsite.get("failed_streams_total"):
            writes = None  # failed replies write differently: not comparable
        checks.append({
            "target": f"{name}SQL writes per reply ≤ {bound} ({scenario['tokens']} tokens each, "
                      f"replies lasting {seconds:.1f} s)",
            "scenario": scenario["key"], "value": writes,
            "met": None if writes is None else writes <= bound,
        })  # fmt: skip
    return checks


def write(results: dict, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    meta = results["meta"]
    stem = f"{meta['date'][:10]}-{meta['cores']}core-{platform.machine()}"
    return write_files(results, folder / f"{stem}.json")


def write_files(results: dict, json_path: Path) -> list[Path]:
    """The JSON, and the Markdown and chart drawn from it, side by side."""
    results["targets_checked"] = check_targets(results)
    paths = [json_path, json_path.with_suffix(".md"), json_path.with_suffix(".png")]
    paths[0].write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    draw(results, paths[2])
    paths[1].write_text(markdown(results, paths[2].name))
    return paths


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def one_line(figures: dict) -> str:
    if "not_run" in figures:
        return f"not run: {figures['not_run']}"
    return (
        f"ttft p50 {fmt(figures['ttft_ms_p50'])} ms, chunk p99 "
        f"{fmt(figures['chunk_latency_ms_p99'])} ms, "
        f"cpu/1k {fmt(figures.get('cpu_s_per_1000_chunks'), 3)} s, "
        f"{figures['delivered_chunks']}/{figures['expected_chunks']} chunks, "
        f"failed {figures['failed_streams']} {figures['errors'][:1]}"
    )


def markdown(results: dict, chart: str) -> str:
    meta = results["meta"]
    versions = ", ".join(f"{name} {v}" for name, v in meta["versions"].items())
    lines = [
        f"# Relay benchmark, {meta['date']}",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gb']} GB "
        f"({meta['host']}, {meta['os']}); Python {meta['python']}, {versions}; "
        f"chatsite {meta['commit']}.",
        f"Command: `{meta['command']}` — medians of {meta['repeats']} interleaved repeats, "
        f"{meta['duration_s']:.0f} s in all.",
        "",
        "| Scenario | Target | TTFT p50 / p99 ms | Chunk latency p50 / p99 ms "
        "| CPU-s / 1k chunks | KB / stream | SQL / reply (writes) | Chunks/s | Failed "
        "| Stub / client CPU-s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in results["scenarios"]:
        for target, f in scenario["targets"].items():
            if "not_run" in f:
                lines.append(f"| {scenario['title']} | {target} | not run: {f['not_run']} |")
                continue
            prefix = "" if target == "stub" else "added_"
            sql = (
                f"{fmt(f.get('sql_per_reply'))} ({fmt(f.get('sql_writes_per_reply'))})"
                if target.startswith("chatsite") else "-"
            )  # fmt: skip
            lines.append(
                f"| {scenario['title']} | {target}{' (absolute)' if target == 'stub' else ''} "
                f"| {fmt(f.get(prefix + 'ttft_ms_p50'))} / {fmt(f.get(prefix + 'ttft_ms_p99'))} "
                f"| {fmt(f.get(prefix + 'chunk_latency_ms_p50'), 2)} / "
                f"{fmt(f.get(prefix + 'chunk_latency_ms_p99'), 2)} "
                f"| {fmt(f.get('cpu_s_per_1000_chunks'), 3)} "
                f"| {fmt(f.get('memory_kb_per_stream'))} "
                f"| {sql} | {fmt(f['chunks_per_s'], 0)} | {f['failed_streams_total']} "
                f"| {fmt(f['stub_cpu_s'], 2)} / {fmt(f['client_cpu_s'], 2)} |"
            )
    lines += sizing(results)
    lines += same_transport(results)
    lines += ["", "## The issue's targets for chatsite", ""]
    lines += ["| Target | Scenario | Measured | Met |", "| --- | --- | --- | --- |"]
    for check in results["targets_checked"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[check["met"]]
        lines.append(
            f"| {check['target']} | {check['scenario']} | {fmt(check['value'], 2)} | {met} |"
        )
    lines += ["", f"![latency and CPU against concurrency]({chart})", "", NOTES]
    return "\n".join(lines) + "\n"


def sizing(results: dict) -> list[str]:
    """Streams one core sustains at each scenario's pace, from its CPU per 1,000 chunks."""
    lines = ["", "## Streams per core", ""]
    lines += [
        "| Scenario | Tokens/s per stream | Floor | Floor (aiohttp) | chatsite | chatsite /v1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in results["scenarios"]:
        if not scenario["rate"]:
            continue
        cells = []
        for target in (*FLOORS, *CHATSITE):
            figures = scenario["targets"].get(target, {})
            cpu = figures.get("cpu_s_per_1000_chunks")
            if failed := figures.get("failed_streams_total"):
                cells.append(f"- ({failed} streams failed)")
            else:
                cells.append(fmt(1000 / (scenario["rate"] * cpu), 0) if cpu else "-")
        lines.append(f"| {scenario['title']} | {scenario['rate']:g} | {' | '.join(cells)} |")
    return lines


def same_transport(results: dict) -> list[str]:
    """chatsite against the floor whose httpx runs on chatsite's own transport (aiohttp):
    what chatsite adds beyond its HTTP client. From the medians, for reference only."""
    lines = ["", "## Against the floor on chatsite's HTTP transport (floor-aiohttp)", ""]
    lines += [
        "| Scenario | CPU ratio: chatsite | chatsite /v1 | Chunks/s ratio: chatsite "
        "| chatsite /v1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scenario in results["scenarios"]:
        floor = scenario["targets"].get("floor-aiohttp", {})
        if "cpu_s_per_1000_chunks" not in floor:
            continue
        cpu, chunks = [], []
        for target in CHATSITE:
            figures = scenario["targets"].get(target, {})
            cpu.append(ratio(figures.get("cpu_s_per_1000_chunks"), floor["cpu_s_per_1000_chunks"]))
            chunks.append(ratio(figures.get("chunks_per_s"), floor.get("chunks_per_s")))
        cells = " | ".join(fmt(value, 2) for value in (*cpu, *chunks))
        lines.append(f"| {scenario['title']} | {cells} |")
    return lines


NOTES = """\
How to read this: the stub row is the baseline (absolute times through no relay, the
client's and stub's own cost); floor and chatsite rows are *added* times over that baseline.
`floor` is the issue's floor (httpx on its own transport, httpcore), which the targets use;
`floor-aiohttp` is the same relay with httpx on aiohttp's transport, as chatsite's.
`chatsite` is the chat page's path, `chatsite-v1` the OpenAI-compatible endpoint (one
streamed POST with an API key, storing a new conversation each). TTFT runs from just before
the client connects (for chatsite: the message POST, then the stream GET, on the same
connection with one worker, on a new one with several) to the first token; chunk latency is
each later token's receive time minus the stub's write time (same machine, same monotonic
clock). CPU is the server processes' user + system seconds (on several workers Redis's and
PostgreSQL's included) while the scenario ran, per 1,000 delivered tokens, so it includes
the requests, the database work and the event log. One worker runs on SQLite, several on
PostgreSQL and Redis. Memory is the peak resident set above idle (the kernel's high-water
mark; PostgreSQL's not counted) divided by the most streams open at once; with one stream
open it is mostly the requests' own transient memory. SQL counts every statement chatsite's
processes sent (execute wrappers, see bench/counted.py), per reply, reads and
BEGIN/SAVEPOINT included; the writes' bound is the constant writes, the first-token save and
a checkpoint a second of the replies' life, as scheduled or, when load made them late, as
long as they lasted (their average from message POST to end, read from the stored replies).
Streams per core is one core-second divided by what a stream costs per second at that pace
(tokens/s x CPU per token), request handling and storage included.
"""
