"""A reply the model did not end itself (its length limit, a content filter) is marked so in
the Markdown transcript; in the fine-tuning export it and a stopped one stay as context, with
OpenAI's weight 0, not learned from (an answer cut short is no example to follow)."""

import json

from tests.stub import json_error, openai_stream


def exchange(client, conversation_id: str, text: str) -> dict:
    body = client.send(conversation_id, text).json()
    return client.wait_final(conversation_id, body["assistant_message"]["id"])


def test_a_reply_cut_short_is_marked_in_the_transcript_and_not_learned_from(
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
        {"role": "assistant", "content": "Again, whole"},  # the newest, as the model was sent
        {"role": "user", "content": "Three"},
        {"role": "assistant", "content": "Filtered", "weight": 0},  # context, not an example
    ]  # "Four" was not answered at all


def test_a_conversation_with_no_whole_answer_is_no_fine_tuning_example(server, stub, alice_client):
    stub.queue(openai_stream(["Cut"], finish_reason="length"))
    conversation = alice_client.new_conversation()["id"]
    exchange(alice_client, conversation, "One")
    response = alice_client.http.get(f"/api/conversations/{conversation}/export/?format=jsonl")
    assert response.status_code == 200 and response.text == ""


def test_a_message_whose_reply_failed_without_text_stays_in_the_example_as_it_was_asked(
    server, stub, alice_client
):
    # The model was sent it with the next message (history keeps unanswered ones), so the
    # example keeps it; one after the last answer was never part of an answered prompt.
    stub.queue(
        json_error(400, "The stub refuses this one."),
        openai_stream(["Answered"]),
        json_error(400, "And this one."),
    )
    conversation = alice_client.new_conversation()["id"]
    for text in ("One", "Two", "Three"):
        exchange(alice_client, conversation, text)
    example = alice_client.http.get(f"/api/conversations/{conversation}/export/?format=jsonl")
    assert json.loads(example.text)["messages"] == [
        {"role": "user", "content": "One"},
        {"role": "user", "content": "Two"},
        {"role": "assistant", "content": "Answered"},
    ]
    assert stub.requests[1].json["messages"][-2:] == [
        {"role": "user", "content": "One"},
        {"role": "user", "content": "Two"},
    ]  # as the model was sent them


def test_an_answer_regenerated_after_later_messages_is_not_in_their_example(
    server, stub, alice_client
):
    # "Two"'s answer was asked with "One" unanswered; "One" answered later, by a regenerate,
    # was never part of that prompt.
    stub.queue(
        json_error(400, "The stub refuses this one."),
        openai_stream(["Answered"]),
        openai_stream(["Late answer"]),
    )
    conversation = alice_client.new_conversation()["id"]
    first = exchange(alice_client, conversation, "One")
    exchange(alice_client, conversation, "Two")
    again = alice_client.http.post(f"/api/messages/{first['parent']}/regenerate/", json={})
    alice_client.wait_final(conversation, again.json()["assistant_message"]["id"])
    example = alice_client.http.get(f"/api/conversations/{conversation}/export/?format=jsonl")
    assert json.loads(example.text)["messages"] == [
        {"role": "user", "content": "One"},
        {"role": "user", "content": "Two"},
        {"role": "assistant", "content": "Answered"},
    ]


def test_an_answer_of_only_whitespace_is_left_out_of_the_example_as_the_model_was_sent(
    server, stub, alice_client
):
    # Regenerated into a newline alone (or stopped just after one): the model was sent the
    # answer before it, so the example has that one too; and none ends with such an answer.
    stub.queue(*(openai_stream([text]) for text in ("Hello", "\n", "Bye", "  ")))
    conversation = alice_client.new_conversation()["id"]
    first = exchange(alice_client, conversation, "One")
    blank = alice_client.http.post(f"/api/messages/{first['id']}/regenerate/", json={})
    alice_client.wait_final(conversation, blank.json()["assistant_message"]["id"])
    exchange(alice_client, conversation, "Two")
    exchange(alice_client, conversation, "Three")  # answered with spaces: no example's end
    example = alice_client.http.get(f"/api/conversations/{conversation}/export/?format=jsonl")
    expected = [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Two"},
    ]
    assert stub.requests[2].json["messages"] == expected
    assert json.loads(example.text)["messages"] == [
        *expected,
        {"role": "assistant", "content": "Bye"},
    ]
