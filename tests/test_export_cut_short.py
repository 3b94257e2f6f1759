"""A reply the model did not end itself (its length limit, a content filter) is marked so in
the Markdown transcript, and left out of the fine-tuning export with stopped and failed ones:
an answer cut short is no example to learn from."""

import json

from tests.stub import json_error, openai_stream


def exchange(client, conversation_id: str, text: str) -> dict:
    body = client.send(conversation_id, text).json()
    return client.wait_final(conversation_id, body["assistant_message"]["id"])


def test_a_reply_cut_short_is_marked_in_the_transcript_and_left_out_of_fine_tuning(
    server, stub, alice_client
):
    stub.queue(
        openai_stream(["Whole"]),
        openai_stream(["Cut"], finish_reason="length"),
        openai_stream(["Again, whole"]),
        openai_stream(["Filtered"], finish_reason="content_filter"),
        json_error(400, "The stub refuses this one."),
    )
    conversation = alice_client.new_conversation()["id"]
    exchange(alice_client, conversation, "One")
    cut = exchange(alice_client, conversation, "Two")
    again = alice_client.http.post(f"/api/messages/{cut['id']}/regenerate/", json={})
    alice_client.wait_final(conversation, again.json()["assistant_message"]["id"])
    exchange(alice_client, conversation, "Three")
    exchange(alice_client, conversation, "Four")  # refused: failed

    base = f"/api/conversations/{conversation}/export/?format="
    markdown = alice_client.http.get(base + "markdown").text
    assert " · complete · finish reason: length · " in markdown
    assert " · complete · finish reason: content_filter · " in markdown
    assert markdown.count("finish reason") == 2  # not for the whole ones, nor the failed one
    example = json.loads(alice_client.http.get(base + "jsonl").text)
    assert example["messages"] == [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Whole"},
        {"role": "user", "content": "Two"},
        {"role": "assistant", "content": "Again, whole"},  # not the one cut at its limit
    ]  # "Three" was answered only in part, "Four" not at all
