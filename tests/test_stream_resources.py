"""An open stream costs the server no database connection, however long it stays open, and
neither does an idle request thread.

Django closes a request's connection only when its response ends; a reply's stream may stay
open for minutes, and with PostgreSQL hundreds of open streams must not hold hundreds of
connections. The server's connections are counted from outside the process, as its TCP
connections to PostgreSQL. (On SQLite they cannot be: SQLite keeps a closed connection's file
open while another connection of the process holds a lock on it.)
"""

import contextlib

import psutil
import pytest
from django.db import connection

from tests.client import read_events, text_of
from tests.stub import Gate
from tests.test_disconnect import BEFORE_GATE, gated_reply

STREAMS = 3


def database_connections(pid: int) -> int:
    """How many PostgreSQL connections the process `pid` has open now."""
    port = int(connection.settings_dict.get("PORT") or 5432)
    return sum(
        1
        for socket in psutil.Process(pid).net_connections(kind="tcp")
        if socket.raddr and socket.raddr.port == port and socket.status == psutil.CONN_ESTABLISHED
    )


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="counted on PostgreSQL (the suite's second run)"
)
def test_open_streams_hold_no_database_connection(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_reply(gate))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Say the pangram").json()
    gate.wait_reached()  # the producer has loaded the reply: its connection is open
    before = database_connections(server.process.pid)

    with contextlib.ExitStack() as streams:
        readers = []  # kept: a reader let go of closes its connection
        for _ in range(STREAMS):
            response = streams.enter_context(alice_client.http.stream("GET", body["stream_url"]))
            readers.append(read_events(response.iter_bytes()))
            seen = []
            for event in readers[-1]:
                seen.append(event)
                if text_of(seen) == "".join(BEFORE_GATE):
                    break  # live and waiting at the gate
        during = database_connections(server.process.pid)
    gate.open()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])

    # The producers' one connection; idle request threads hold none.
    assert before == 1, f"{before} connections with nothing but a producer running"
    assert during == before, f"{STREAMS} open streams hold {during - before} connections"
