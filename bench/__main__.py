"""Run the relay benchmark: python -m bench run [--quick] [--repeats N] [--out DIR].

Every scenario runs against every target, interleaved (the target order rotates each
repeat), repeated; medians go to DIR (bench/results/ by default) as <date>-<machine>.json,
.md and .png. --quick is a tiny version for the test suite: it checks that the benchmark
works, not how fast anything is. `python -m bench report FILE.json` draws the Markdown and
the chart of an earlier run again.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import chatdb, report
from bench.scenarios import CHATSITE, FULL, QUICK, TARGETS, Bench, run_once
from bench.stats import medians, versus_floor, versus_key, with_added

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("results", nargs="?", type=Path, help="report: a run's JSON file")
    parser.add_argument("--quick", action="store_true", help="tiny scenarios, one repeat")
    parser.add_argument("--repeats", type=int, help="runs of each scenario (default 3; quick 1)")
    parser.add_argument("--only", nargs="*", help="scenario keys to run (default: all)")
    parser.add_argument("--targets", nargs="*", choices=TARGETS, help="default: all")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the report")
    parser.add_argument("--keep-work", action="store_true", help="keep logs and the database")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.command == "report":
        paths = report.write_files(json.loads(args.results.read_text()), args.results)
        print("\n".join(str(path) for path in paths))
        return 0
    scenarios = [s for s in (QUICK if args.quick else FULL) if not args.only or s.key in args.only]
    repeats = args.repeats or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="chatsite-bench-"))
    print(f"work folder: {work}", flush=True)
    started, load_before = time.time(), os.getloadavg()
    bench = Bench(work=work, logins=[])
    try:
        bench.logins = chatdb.prepare(bench.database)
        if any(scenario.workers > 1 for scenario in scenarios):
            bench.postgres_url = chatdb.create_postgres_database()
        if bench.postgres_url:
            bench.postgres_logins = chatdb.prepare_postgres(bench.postgres_url)
        runs = run_all(bench, scenarios, repeats, tuple(args.targets or TARGETS))
    except BaseException:
        print(f"benchmark failed; logs kept in {work}", file=sys.stderr)
        raise
    finally:
        if bench.postgres_url:
            chatdb.drop_postgres_database(bench.postgres_url)
    results = {
        "meta": report.machine()
        | {
            "command": "python -m bench " + " ".join(argv),
            "repeats": repeats,
            "duration_s": round(time.time() - started, 1),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "scenarios": [aggregate(scenario, runs[scenario.key]) for scenario in scenarios],
    }
    paths = report.write(results, args.out)
    print("\n".join(str(path) for path in paths))
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_all(
    bench: Bench, scenarios: list, repeats: int, targets: tuple[str, ...]
) -> dict[str, list[dict]]:
    """{scenario key: [{target: figures} per repeat]}, interleaving scenarios and targets."""
    runs: dict[str, list[dict]] = {scenario.key: [] for scenario in scenarios}
    for repeat in range(repeats):
        for number, scenario in enumerate(scenarios):
            shift = (repeat + number) % len(targets)
            order = targets[shift:] + targets[:shift]
            figures = {}
            for target in order:
                print(f"repeat {repeat + 1}/{repeats} {scenario.key} {target}", flush=True)
                figures[target] = run_once(bench, scenario, target)
                print("  " + report.one_line(figures[target]), flush=True)
            runs[scenario.key].append(with_added(figures))
    return runs


def aggregate(scenario, repeats: list[dict]) -> dict:
    targets = {}
    for target in repeats[0]:
        runs = [repeat[target] for repeat in repeats]
        if not_run := next((run["not_run"] for run in runs if "not_run" in run), None):
            targets[target] = {"not_run": not_run}
            continue
        targets[target] = medians(runs)
        targets[target]["failed_streams_total"] = sum(run["failed_streams"] for run in runs)
    return {
        "key": scenario.key,
        "title": scenario.title,
        "streams": scenario.streams,
        "concurrency": scenario.concurrency,
        "tokens": scenario.tokens,
        "rate": scenario.rate,
        "ramp_s": scenario.ramp,
        "workers": scenario.workers,
        "targets": targets,
        **{
            versus_key(target): medians([versus_floor(repeat, target) for repeat in repeats])
            for target in CHATSITE
        },
        "runs": repeats,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
