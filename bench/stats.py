"""From stream results to figures: one run's percentiles, then medians over repeated runs.

"Added" figures subtract the stub-direct figure of the same repeat (what the client and
the stub cost by themselves), so they are what a relay adds; chatsite's comparisons with
the floor are taken within each repeat too, and the median over repeats is reported.
"""

import statistics

from bench.load import StreamResult


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linearly interpolated; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(results: list[StreamResult], started_ns: int, tokens: int) -> dict:
    """One run's figures from its streams."""
    good = [r for r in results if not r.error]
    ttft_ms = [(r.first_token_ns - r.started_ns) / 1e6 for r in good if r.first_token_ns]
    latency_ms = [us / 1000 for r in results for us in r.latencies_us]
    chunks = sum(r.chunks for r in results)
    last = max((r.last_token_ns for r in results if r.chunks), default=started_ns)
    wall = max((last - started_ns) / 1e9, 1e-9)
    errors = sorted({r.error for r in results if r.error})
    return {
        "streams": len(results),
        "failed_streams": len(results) - len(good),
        "errors": errors[:5],
        "expected_chunks": len(results) * tokens,
        "delivered_chunks": chunks,
        "wall_s": wall,
        "chunks_per_s": chunks / wall,
        "ttft_ms_p50": percentile(ttft_ms, 50),
        "ttft_ms_p99": percentile(ttft_ms, 99),
        "chunk_latency_ms_p50": percentile(latency_ms, 50),
        "chunk_latency_ms_p99": percentile(latency_ms, 99),
    }


ADDED = ("ttft_ms_p50", "ttft_ms_p99", "chunk_latency_ms_p50", "chunk_latency_ms_p99")


def with_added(repeat: dict[str, dict]) -> dict[str, dict]:
    """One repeat's {target: figures}, each with added_* figures over the stub's."""
    stub = repeat.get("stub", {})
    for figures in repeat.values():
        for name in ADDED:
            if figures.get(name) is not None and stub.get(name) is not None:
                figures[f"added_{name}"] = figures[name] - stub[name]
    return repeat


def versus_key(target: str) -> str:
    """Where a chatsite target's comparisons with the floor are kept: chatsite_vs_floor, …"""
    return target.replace("-", "_") + "_vs_floor"


def versus_floor(repeat: dict[str, dict], target: str = "chatsite") -> dict:
    """A chatsite target against the floor in one repeat: what the issue's targets name."""
    chat, floor = repeat.get(target), repeat.get("floor")
    if not chat or not floor or "not_run" in chat or "not_run" in floor:
        return {}
    comparison = {
        "cpu_ratio": ratio(chat.get("cpu_s_per_1000_chunks"), floor.get("cpu_s_per_1000_chunks")),
        "chunks_per_s_ratio": ratio(chat["chunks_per_s"], floor["chunks_per_s"]),
        "added_ttft_p50_ratio": ratio(
            chat.get("added_ttft_ms_p50"), floor.get("added_ttft_ms_p50")
        ),
    }
    for name in ADDED:
        if chat.get(name) is not None and floor.get(name) is not None:
            comparison[f"{name}_over_floor"] = chat[name] - floor[name]
    return comparison


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def medians(runs: list[dict]) -> dict:
    """The median of every numeric figure over repeated runs (lists of errors are merged)."""
    merged: dict = {}
    for name in dict.fromkeys(key for run in runs for key in run):
        values = [run[name] for run in runs if run.get(name) is not None]
        if not values:
            merged[name] = None
        elif isinstance(values[0], list):
            merged[name] = sorted({item for value in values for item in value})[:5]
        else:
            merged[name] = statistics.median(values)
    return merged
