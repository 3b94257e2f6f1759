"""The processes a benchmark run starts, and how their CPU, memory and queries are read.

Each server is one or more daphne workers on one port: the benchmark opens a listening socket
per worker (backlog 4096) with SO_REUSEPORT, so the kernel spreads new connections evenly
over the workers. (With one shared socket, whichever worker woke first accepted every
pending connection, and a quick run could leave a worker with none.)
CPU is user + system time from psutil; peak memory is the kernel's high-water mark of the
resident set (VmHWM), reset after warm-up, so it covers exactly the measured scenario.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
DAPHNE = [sys.executable, "-m", "chatsite.server"]  # daphne on uvloop, as chatsite is served
START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Measured:
    """A set of processes whose CPU seconds and peak memory are read between two marks."""

    def __init__(self, processes: list[subprocess.Popen]) -> None:
        self.processes = processes
        self.handles = [psutil.Process(process.pid) for process in processes]
        self._cpu_mark = 0.0
        self._rss_mark = 0
        self._peak_reset = False

    def cpu_seconds(self) -> float:
        return sum(sum(handle.cpu_times()[:2]) for handle in self.handles)

    def mark(self) -> None:
        """Start measuring: note CPU so far and idle memory; reset the peak-memory mark."""
        self._cpu_mark = self.cpu_seconds()
        self._rss_mark = sum(handle.memory_info().rss for handle in self.handles)
        try:
            for handle in self.handles:
                Path(f"/proc/{handle.pid}/clear_refs").write_text("5")  # VmHWM := current RSS
            self._peak_reset = True
        except OSError:  # not Linux, or not allowed: no honest peak to report
            self._peak_reset = False

    def cpu_since_mark(self) -> float:
        return self.cpu_seconds() - self._cpu_mark

    def peak_bytes_above_idle(self) -> int | None:
        if not self._peak_reset:
            return None
        return sum(peak_rss(handle.pid) for handle in self.handles) - self._rss_mark

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class PostgresBackends(Measured):
    """The PostgreSQL server processes serving one database: those alive when the measurement
    starts (the workers' connection pools keep theirs open) and any started during it.
    Their CPU counts; their memory does not (shared buffers are not per stream)."""

    def __init__(self, database_url: str) -> None:
        self.database = database_url.rsplit("/", 1)[1]
        super().__init__([])

    def _backends(self) -> list[psutil.Process]:
        # A backend's title is "postgres: USER DATABASE HOST(PORT) STATE".
        return [
            process
            for process in psutil.process_iter(["cmdline"])
            if self.database in " ".join(process.info["cmdline"] or []).split()
        ]

    def cpu_seconds(self) -> float:
        total = 0.0
        for handle in self.handles:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(handle.cpu_times()[:2])
        return total

    def mark(self) -> None:
        self.handles = self._backends()
        self._cpu_mark = self.cpu_seconds()

    def cpu_since_mark(self) -> float:
        known = {handle.pid for handle in self.handles}
        self.handles += [p for p in self._backends() if p.pid not in known]  # started since
        return self.cpu_seconds() - self._cpu_mark

    def peak_bytes_above_idle(self) -> int:
        return 0

    def stop(self) -> None:
        pass  # the server is the machine's; its backends end with the workers' connections


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def start_listening(name: str, command: list[str], port: int, log_dir: Path) -> Measured:
    """Start a process that listens on `port` itself; return once it accepts connections."""
    with (log_dir / f"{name}-{port}.log").open("ab") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early; see its log in {log_dir}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return Measured([process])
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"{name} did not start")


def start_stub(log_dir: Path) -> tuple[Measured, int]:
    port = free_port()
    return start_listening(
        "stub", [sys.executable, "-m", "bench.stub", str(port)], port, log_dir
    ), port


def start_redis(log_dir: Path) -> tuple[Measured, int]:
    """A private Redis on loopback that keeps nothing on disk, for chatsite's event log."""
    port = free_port()
    command = [shutil.which("redis-server") or "redis-server", "--port", str(port),
               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(log_dir)]  # fmt: skip
    return start_listening("redis", command, port, log_dir), port


def reuse_port_listener(port: int) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    return listener


class Server(Measured):
    """daphne workers serving `app` on one shared port."""

    def __init__(self, app: str, workers: int, env: dict[str, str], log_dir: Path) -> None:
        listeners = [reuse_port_listener(0)]
        self.port = listeners[0].getsockname()[1]
        listeners += [reuse_port_listener(self.port) for _ in range(workers - 1)]
        self.logs = [log_dir / f"{app.split(':')[0]}-{self.port}-{i}.log" for i in range(workers)]
        processes = []
        for listener, log_path in zip(listeners, self.logs, strict=True):
            with listener, log_path.open("ab") as log:  # the worker holds the socket now
                processes.append(
                    subprocess.Popen(
                        [*DAPHNE, "--fd", str(listener.fileno()), app],
                        cwd=BASE_DIR,
                        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                        pass_fds=[listener.fileno()],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        super().__init__(processes)
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        waiting = list(zip(self.processes, self.logs, strict=True))
        while waiting and time.monotonic() < deadline:
            process, log = waiting[0]
            if process.poll() is not None:
                raise RuntimeError(f"a server exited early:\n{log.read_text()[-3000:]}")
            if "Listening on" in log.read_text(errors="replace"):
                waiting.pop(0)
            else:
                time.sleep(0.05)
        if waiting:
            self.stop()
            raise RuntimeError(f"a server did not start; see {waiting[0][1]}")

    def idle_workers(self) -> int:
        """Workers that have not served a request yet (daphne logs each one it served)."""
        return sum('" 20' not in log.read_text(errors="replace") for log in self.logs)


class QueryCounts:
    """Per-process SQL counts written by bench.counted on SIGUSR1."""

    def __init__(self, server: Server, folder: Path) -> None:
        self.server, self.folder = server, folder
        self._taken = 0

    def snapshot(self) -> dict[str, int]:
        self._taken += 1
        for process in self.server.processes:
            os.kill(process.pid, signal.SIGUSR1)
        total: dict[str, int] = {}
        for process in self.server.processes:
            data = self._read(process.pid)
            for kind, count in data["counts"].items():
                total[kind] = total.get(kind, 0) + count
        return total

    def _read(self, pid: int) -> dict:
        path = self.folder / f"queries-{pid}.json"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if path.exists():
                data = json.loads(path.read_text())
                if data["snapshot"] == self._taken:
                    return data
            time.sleep(0.01)
        raise RuntimeError(f"worker {pid} wrote no query counts")
