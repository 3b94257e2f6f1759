"""The scenarios, the four targets, and one measured run of a scenario against a target.

Targets: the provider stub directly (the client's and stub's own cost), the floor relay
(bench/floor.py), chatsite's chat stream path (message POST, then its stream GET on the same
connection) and chatsite's OpenAI-compatible endpoint (one streamed POST to
/v1/chat/completions with an API key, a new conversation each). Every run starts fresh
processes, warms them up with two short streams, then measures only the scenario: the
server's CPU and peak memory, the stub's and the client's CPU, chatsite's SQL statements,
and every chunk's timing.

chatsite runs as it is meant to at each size: one worker on SQLite and the in-process event
log; several workers on PostgreSQL (with Django's connection pool) and Redis, whose CPU
counts as the server's (PostgreSQL's memory does not: its shared buffers are not per stream).
"""

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import chatdb, load
from bench.procs import (
    Measured,
    PostgresBackends,
    QueryCounts,
    Server,
    start_redis,
    start_stub,
)
from bench.stats import summarize

TARGETS = ("stub", "floor", "floor-aiohttp", "chatsite", "chatsite-v1")
FLOORS = ("floor", "floor-aiohttp")  # httpx on httpcore; on aiohttp, as chatsite
CHATSITE = ("chatsite", "chatsite-v1")  # served by chatsite itself
WARM_UP_ROUNDS = 5  # rounds of two short streams per worker, until every worker served one


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    streams: int
    tokens: int
    rate: float  # tokens per second per stream; 0: as fast as possible
    ramp: float = 0.0  # seconds over which the streams start; 0: all at once
    sequential: bool = False  # one stream after another (time to first token samples)
    workers: int = 1  # several: chatsite on PostgreSQL, sharing replies through Redis

    @property
    def concurrency(self) -> int:
        return 1 if self.sequential else self.streams


CORES = os.cpu_count() or 1
FULL = (
    Scenario("1x200-fast", "1 stream x 200 tokens, as fast as possible (30 in a row)",
             streams=30, tokens=200, rate=0, sequential=True),
    Scenario("100x200-50tps-ramp", "100 streams x 200 tokens at 50/s, started over 2 s",
             streams=100, tokens=200, rate=50, ramp=2.0),
    Scenario("100x200-50tps-burst", "100 streams x 200 tokens at 50/s, started at once",
             streams=100, tokens=200, rate=50),
    Scenario("500x100-20tps", "500 streams x 100 tokens at 20/s, started over 2 s",
             streams=500, tokens=100, rate=20, ramp=2.0),
    Scenario("1000x100-20tps-workers", f"1,000 streams x 100 tokens at 20/s on {CORES} workers "
             "(chatsite: PostgreSQL and Redis), started over 4 s",
             streams=1000, tokens=100, rate=20, ramp=4.0, workers=CORES),
)  # fmt: skip
QUICK = (
    Scenario("1x20-fast", "1 stream x 20 tokens, as fast as possible (3 in a row)",
             streams=3, tokens=20, rate=0, sequential=True),
    Scenario("5x20-100tps", "5 streams x 20 tokens at 100/s, at once",
             streams=5, tokens=20, rate=100),
    Scenario("10x20-100tps-workers", f"10 streams x 20 tokens at 100/s on {CORES} workers",
             streams=10, tokens=20, rate=100, workers=CORES),
)  # fmt: skip


@dataclass
class Bench:
    """What every run shares: the work folder, chatsite's databases and their logins."""

    work: Path
    logins: list  # on the SQLite database
    postgres_url: str | None = None  # None: no PostgreSQL server was reachable
    postgres_logins: list | None = None

    @property
    def database(self) -> Path:
        return self.work / "bench.sqlite3"


@dataclass
class Processes:
    """One run's processes: the stub, and the server (with Redis for chatsite on several)."""

    stub: Measured
    stub_port: int
    server: Server | None = None
    redis: Measured | None = None
    postgres: PostgresBackends | None = None

    @property
    def server_side(self) -> list[Measured]:
        return [p for p in (self.server, self.redis, self.postgres) if p is not None]

    def stop(self) -> None:
        for process in (self.server, self.redis, self.stub):
            if process is not None:
                process.stop()


def run_once(bench: Bench, scenario: Scenario, target: str) -> dict:
    """Measure one scenario against one target with fresh processes; the run's figures."""
    if target in CHATSITE and scenario.workers > 1 and (why := cannot_scale_out(bench)):
        return {"not_run": why}
    logins, keys = [], []
    total = WARM_UP_ROUNDS * 2 * scenario.workers + scenario.streams
    on = (bench.postgres_logins, chatdb.POSTGRES) if scenario.workers > 1 else (bench.logins,)
    if target == "chatsite":  # written now: nothing touches the database during the run
        logins = [
            load.ChatLogin(session_key, chatdb.csrf_token(), conversation)
            for conversation, session_key in chatdb.new_conversations(on[0], total, *on[1:])
        ]
    elif target == "chatsite-v1":
        keys = chatdb.api_keys(on[0], total)
    stub, stub_port = start_stub(bench.work)
    processes = Processes(stub, stub_port)
    try:
        start_server(bench, scenario, target, processes)
        port = processes.server.port if processes.server else stub_port
        shared = processes.redis is not None

        def make_stream(index: int, tokens: int, rate: float):
            if target == "chatsite":
                return load.chatsite_stream(port, tokens, rate, logins[index], not shared)
            if target == "chatsite-v1":
                key = f"Authorization: Bearer {keys[index]}\r\n"
                return load.openai_stream(port, tokens, rate, f"openai:{chatdb.MODEL}", key)
            return load.openai_stream(port, tokens, rate)

        return asyncio.run(measure(scenario, target, processes, make_stream, bench))
    finally:
        processes.stop()


def start_server(bench: Bench, scenario: Scenario, target: str, processes: Processes) -> None:
    stub_url = f"http://127.0.0.1:{processes.stub_port}"
    if target in FLOORS:
        env = {"BENCH_STUB_URL": stub_url, "BENCH_MAX_CONNECTIONS": str(scenario.streams + 100)}
        env["BENCH_FLOOR_TRANSPORT"] = "aiohttp" if target == "floor-aiohttp" else "httpcore"
        processes.server = Server("bench.floor:application", scenario.workers, env, bench.work)
    elif target in CHATSITE:
        url = chatdb.sqlite_url(bench.database)
        env = chatdb.server_env(url, processes.stub_port, bench.work, scenario.streams)
        if scenario.workers > 1:
            env |= {"DATABASE_URL": bench.postgres_url, "DATABASE_POOL": "on"}
            processes.postgres = PostgresBackends(bench.postgres_url)
            processes.redis, redis_port = start_redis(bench.work)
            # chatsite's own connection cap (CHATSITE_REDIS_MAX_CONNECTIONS): open streams
            # hold no connection, so the benchmark does not raise it.
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        processes.server = Server("bench.counted:application", scenario.workers, env, bench.work)


def cannot_scale_out(bench: Bench) -> str | None:
    """Why chatsite cannot run on several workers here, if it cannot."""
    if not shutil.which("redis-server"):
        return "redis-server is not installed; several chatsite processes share replies "\
               "through Redis (REDIS_URL)"  # fmt: skip
    if bench.postgres_url is None:
        return f"no PostgreSQL server at {chatdb.POSTGRES_SERVER} (BENCH_POSTGRES_URL)"
    return None


async def warm_up(processes: Processes, make_stream, target: str, workers: int) -> None:
    """Short streams until every worker has served one (first requests import and cache
    a lot)."""
    used = 0
    for _ in range(WARM_UP_ROUNDS):
        streams = [make_stream(used + i, 5, 0) for i in range(2 * workers)]
        used += len(streams)
        results = await asyncio.gather(*(load.guarded(s, 5, 60) for s in streams))
        if failed := [r.error for r in results if r.error]:
            raise RuntimeError(f"warm-up stream through {target} failed: {failed[0]}")
        if processes.server is None or not processes.server.idle_workers():
            return
    raise RuntimeError(f"a {target} worker served no warm-up stream")


async def measure(
    scenario: Scenario, target: str, processes: Processes, make_stream, bench
) -> dict:
    await warm_up(processes, make_stream, target, scenario.workers)
    first_login = WARM_UP_ROUNDS * 2 * scenario.workers  # the warm-up's are used
    server = processes.server
    queries = QueryCounts(server, bench.work) if target in CHATSITE else None
    queries_before = queries.snapshot() if queries else {}
    began = datetime.now(UTC)  # replies begun from now on are the measured ones
    for measured in (processes.stub, *processes.server_side):
        measured.mark()
    client = psutil.Process()
    client_cpu = sum(client.cpu_times()[:2])
    started = time.monotonic_ns()
    results, peak = await load.run_streams(
        lambda i: make_stream(first_login + i, scenario.tokens, scenario.rate),
        scenario.streams, scenario.tokens, scenario.rate, scenario.ramp, scenario.sequential,
    )  # fmt: skip
    figures = summarize(results, started, scenario.tokens)
    figures["peak_concurrent_streams"] = peak
    figures["client_cpu_s"] = sum(client.cpu_times()[:2]) - client_cpu
    figures["stub_cpu_s"] = processes.stub.cpu_since_mark()
    if server:
        figures["server_processes"] = len(server.processes)
        figures["server_cpu_s"] = sum(m.cpu_since_mark() for m in processes.server_side)
        if processes.redis:
            figures["redis_cpu_s"] = processes.redis.cpu_since_mark()
        if processes.postgres:
            figures["postgres_cpu_s"] = processes.postgres.cpu_since_mark()
        peaks = [m.peak_bytes_above_idle() for m in processes.server_side]
        if None not in peaks:
            figures["memory_kb_per_stream"] = sum(peaks) / 1024 / max(peak, 1)
        chunks = figures["delivered_chunks"]
        figures["cpu_s_per_1000_chunks"] = figures["server_cpu_s"] * 1000 / max(chunks, 1)
    if queries:
        figures.update(per_reply(queries_before, queries.snapshot(), scenario.streams))
        # Checkpoints come once a second of a reply's life, which load can stretch.
        using = chatdb.POSTGRES if scenario.workers > 1 else "default"
        figures["reply_seconds"] = await asyncio.to_thread(chatdb.reply_seconds, began, using)
    return figures


def per_reply(before: dict, after: dict, replies: int) -> dict:
    """SQL statements per reply by kind, with writes and the total."""
    figures = {f"sql_{kind}_per_reply": (after[kind] - before.get(kind, 0)) / replies
               for kind in after}  # fmt: skip
    writes = sum(figures[f"sql_{kind}_per_reply"] for kind in ("insert", "update", "delete"))
    figures["sql_writes_per_reply"] = writes
    reads_and_others = figures["sql_select_per_reply"] + figures["sql_other_per_reply"]
    figures["sql_per_reply"] = writes + reads_and_others
    return figures
