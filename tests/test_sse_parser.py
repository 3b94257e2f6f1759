"""The SSE parser against the WHATWG rules (HTML, "Server-sent events", parsing an event stream).

Every case is also fed in many chunkings: byte by byte, in small pieces, and split in two at
every position, so CRLFs, BOMs and multi-byte characters land across reads.
"""

from collections.abc import Callable, Iterable

import pytest

from conversations.providers.sse import ServerSentEvent, SSEDecoder

BOM = "\ufeff".encode()


def parse(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def event(data: str, name: str = "message", id: str = "", retry: int | None = None):
    return ServerSentEvent(data=data, event=name, id=id, retry=retry)


def pieces(size: int) -> Callable[[bytes], list[bytes]]:
    return lambda raw: [raw[i : i + size] for i in range(0, len(raw), size)]


CHUNKINGS = {
    "whole": lambda raw: [raw],
    "byte_by_byte": pieces(1),
    "pairs": pieces(2),
    "threes": pieces(3),
    "sevens": pieces(7),
    "with_empty_reads": lambda raw: [b"", *(piece for b in raw for piece in (bytes([b]), b""))],
}

CASES = {
    "lf": (b"data: one\n\ndata: two\n\n", [event("one"), event("two")]),
    "cr": (b"data: one\r\rdata: two\r\r", [event("one"), event("two")]),
    "crlf": (b"data: one\r\n\r\ndata: two\r\n\r\n", [event("one"), event("two")]),
    "mixed_line_ends": (b"data: a\r\ndata: b\rdata: c\n\r\n", [event("a\nb\nc")]),
    "multi_line_data": (
        b"data: first\ndata: second\ndata:third\n\n",
        [event("first\nsecond\nthird")],
    ),
    "empty_data_lines_keep_their_newlines": (b"data\ndata\ndata: x\n\n", [event("\n\nx")]),
    "comments_ignored": (b": hello\ndata: x\n:another: one\n\n: only a comment\n\n", [event("x")]),
    "event_type_applies_to_one_event": (
        b"event: delta\ndata: x\n\ndata: y\n\n",
        [event("x", "delta"), event("y")],
    ),
    "empty_event_type_means_message": (b"event\ndata: x\n\n", [event("x")]),
    "id_persists_and_nul_id_ignored": (
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x00x\ndata: c\n\nid\ndata: d\n\n",
        [event("a", id="1"), event("b", id="1"), event("c", id="1"), event("d", id="")],
    ),
    "retry_only_when_all_digits": (
        b"retry: 1500\ndata: a\n\nretry: 15x\nretry: -1\nretry:  2000\nretry:\ndata: b\n\n",
        [event("a", retry=1500), event("b", retry=1500)],
    ),
    "retry_too_long_to_be_a_delay_ignored": (  # int() refuses over 4,300 digits
        b"retry: 1500\ndata: a\n\nretry: " + b"9" * 5000 + b"\ndata: b\n\n",
        [event("a", retry=1500), event("b", retry=1500)],
    ),
    "retry_with_non_ascii_digits_ignored": (
        "retry: \u0661\u0662\ndata: a\n\n".encode(),
        [event("a")],
    ),
    "one_space_after_colon_stripped": (
        b"data:  two spaces\n\ndata:none\n\ndata:\tx\n\n",
        [event(" two spaces"), event("none"), event("\tx")],
    ),
    "field_without_colon_has_empty_value": (b"data\n\n", [event("")]),
    "unknown_fields_ignored": (b"foo: bar\nfoo\ndata: x\n\n", [event("x")]),
    "field_names_are_case_sensitive": (b"Data: x\n\nDATA: y\n\n", []),
    "leading_bom_stripped": (BOM + b"data: x\n\n", [event("x")]),
    "only_one_bom_stripped": (BOM + BOM + b"data: x\n\ndata: y\n\n", [event("y")]),
    "bom_later_in_stream_kept": (b"data: x\n\n" + BOM + b"data: y\n\n", [event("x")]),
    "event_without_data_not_dispatched": (
        b"event: ping\nid: 7\n\ndata: x\n\n",
        [event("x", id="7")],
    ),
    "empty_data_value_dispatched": (b"data:\n\n", [event("")]),
    "last_event_without_blank_line_dropped": (b"data: a\n\ndata: b\n", [event("a")]),
    "unterminated_last_line_dropped": (b"data: a\n\ndata: b", [event("a")]),
    "lone_cr_at_the_end_ends_the_event": (b"data: a\n\r", [event("a")]),
    "cr_at_the_end_ends_only_a_line": (b"data: a\r", []),
    "multi_byte_utf8": (
        "data: café € 😀 中文\n\n".encode(),
        [event("café € 😀 中文")],
    ),
    "invalid_utf8_replaced": (b"data: a\xffb\n\n", [event("a\ufffdb")]),
    "openai_done": (
        b'data: {"choices":[]}\n\ndata: [DONE]\n\n',
        [event('{"choices":[]}'), event("[DONE]")],
    ),
    "dashscope_frame": (
        b'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{}}\n\n',
        [event('{"output":{}}', "result", id="1")],
    ),
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", CASES)
def test_parser_follows_whatwg_rules_however_the_bytes_are_chunked(case, chunking):
    raw, expected = CASES[case]
    assert parse(CHUNKINGS[chunking](raw)) == expected


@pytest.mark.parametrize("case", CASES)
def test_split_at_every_position_gives_the_same_events(case):
    raw, expected = CASES[case]
    for position in range(len(raw) + 1):
        assert parse([raw[:position], raw[position:]]) == expected, f"split at {position}"


def test_crlf_split_across_two_feeds_is_one_line_end():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Were the LF a second line end, "a" would be dispatched alone here.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r\n") == [event("a\nb")]


def test_multi_byte_character_split_across_feeds():
    euro = "€".encode()
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 5" + euro[:1]) == []
    assert decoder.feed(euro[1:2]) == []
    assert decoder.feed(euro[2:] + b"\n\n") == [event("5€")]


def test_bom_split_across_feeds_is_stripped():
    decoder = SSEDecoder()
    assert decoder.feed(BOM[:1]) == []
    assert decoder.feed(BOM[1:2]) == []
    assert decoder.feed(BOM[2:] + b"data: x\n\n") == [event("x")]


def test_event_is_returned_by_the_feed_that_completes_it():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [event("a")]
    assert decoder.feed(b"data: b\n\ndata: c\n\n") == [event("b"), event("c")]


def test_event_ending_in_cr_is_not_held_back_until_the_next_read():
    decoder = SSEDecoder()
    # The final CR is a complete line end: the event must not wait for a possible LF.
    assert decoder.feed(b"data: a\r\r") == [event("a")]
    assert decoder.feed(b"\ndata: b\r\r") == [event("b")]


def test_close_drops_an_unfinished_event_and_keeps_last_id_and_retry():
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 3\nretry: 100\ndata: a\n\ndata: unfinished\n") == [
        event("a", id="3", retry=100)
    ]
    assert decoder.close() == []
    assert (decoder.last_event_id, decoder.retry) == ("3", 100)
