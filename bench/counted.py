"""chatsite as the benchmark serves it: chatsite.asgi's application, plus a SQL counter.

Every SQL statement Django sends passes through the connection's execute wrappers
(Django's documented hook, installed here on each new connection), which counts it by its
first word. The counts are this process's own, so they work with several worker
processes: on SIGUSR1 the process writes them to BENCH_QUERY_DIR/queries-<pid>.json, and
the benchmark takes the difference of two snapshots. The cost is one Python call per
statement; the application itself is chatsite's, unchanged.

Run: BENCH_QUERY_DIR=DIR daphne --fd N bench.counted:application
"""

import json
import os
import signal
import threading
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

from django.db.backends.signals import connection_created

from chatsite.asgi import application  # noqa: F401  (what daphne serves)

KINDS = ("select", "insert", "update", "delete")
counts = dict.fromkeys((*KINDS, "other", "connections"), 0)
_lock = threading.Lock()  # database work runs in several threads
_snapshots = 0


def count_statement(execute, sql, params, many, context):
    word = sql.lstrip()[:6].lower()
    # executemany runs the statement once per row of parameters.
    statements = len(params) if many and isinstance(params, list) else 1
    with _lock:
        counts[word if word in KINDS else "other"] += statements
    return execute(sql, params, many, context)


def install_counter(sender, connection, **kwargs) -> None:
    with _lock:
        counts["connections"] += 1
    if count_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_statement)


def write_snapshot(signum, frame) -> None:
    global _snapshots
    _snapshots += 1
    folder = Path(os.environ["BENCH_QUERY_DIR"])
    with _lock:
        data = {"pid": os.getpid(), "snapshot": _snapshots, "counts": dict(counts)}
    partial = folder / f"queries-{os.getpid()}.tmp"
    partial.write_text(json.dumps(data))
    partial.replace(folder / f"queries-{os.getpid()}.json")


connection_created.connect(install_counter)
signal.signal(signal.SIGUSR1, write_snapshot)
