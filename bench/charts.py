"""The chart: latency and CPU of the floor relay and chatsite against concurrent streams."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

STYLE = {
    "floor": ("tab:gray", "s"),
    "floor-aiohttp": ("tab:olive", "D"),
    "chatsite": ("tab:green", "o"),
    "chatsite-v1": ("tab:blue", "^"),
}
PANELS = (
    ("added_ttft_ms_p50", "Added time to first token, p50 (ms)"),
    ("added_chunk_latency_ms_p99", "Added chunk latency, p99 (ms)"),
    ("cpu_s_per_1000_chunks", "Server CPU-seconds per 1,000 chunks"),
)


def draw(results: dict, path: Path) -> None:
    """One panel per figure, log scales. Lines join the scenarios started over a ramp (or one
    by one); hollow markers are the scenario started all at once; a red cross is a run in
    which streams failed (its figures are not comparable)."""
    scenarios = sorted(results["scenarios"], key=lambda s: s["concurrency"])
    paced = [s for s in scenarios if s["ramp_s"] or s["concurrency"] == 1]
    burst = [s for s in scenarios if s not in paced]
    figure, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.5))
    for axis, (name, title) in zip(axes, PANELS, strict=True):
        for target, (colour, marker) in STYLE.items():
            for group, fill, label in ((paced, colour, target), (burst, "none", None)):
                ok, failed = points(group, target, name)
                line = "-" if fill != "none" else ""
                if ok:
                    axis.plot(*zip(*ok, strict=True), marker=marker, color=colour, label=label,
                              markerfacecolor=fill, linestyle=line)  # fmt: skip
                if failed:
                    axis.plot(*zip(*failed, strict=True), "x", color="tab:red", markersize=9)
        axis.set(xscale="log", yscale="log", title=title)
        axis.set_xlabel("concurrent streams (1,000: several worker processes)")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    meta = results["meta"]
    figure.suptitle(f"Relay benchmark {meta['date']}, {meta['cores']} cores ({meta['cpu']})")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def points(scenarios: list[dict], target: str, name: str) -> tuple[list, list]:
    """(concurrency, figure) of the runs without failed streams, and of those with some."""
    ok, failed = [], []
    for scenario in scenarios:
        figures = scenario["targets"].get(target, {})
        if figures.get(name) is not None and figures[name] > 0:
            group = failed if figures.get("failed_streams_total") else ok
            group.append((scenario["concurrency"], figures[name]))
    return ok, failed
