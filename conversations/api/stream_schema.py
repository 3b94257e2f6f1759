"""The SSE stream endpoint in the OpenAPI schema (a drf-spectacular postprocessing hook).

GET /api/messages/{id}/stream/ is a plain async Django view (DRF views cannot stream), so
drf-spectacular does not find it; this hook writes its description into the schema.
"""

STREAM_PATH = "/api/messages/{message_id}/stream/"
EVENTS = """A `text/event-stream` of the reply's events, live or finished:

- `reasoning` `{"content"}`: a piece of the model's reasoning, when it shows any;
- `delta` `{"content"}`: a piece of the reply's text;
- `done` `{"message"}`: the stored reply (complete, stopped or interrupted), last event;
- `error` `{"error": {"code", "message"}, "message"?}`: the reply failed, last event. On a
  stream opened with an API key, `error` with code `key_revoked` (and no `id`) ends the
  stream when the key is revoked;
- `ping` `{}` (no `id`), on a stream opened with the session (a page's): a heartbeat, every
  few seconds while the reply is silent; a stream with neither events nor pings for longer has
  lost its connection. With an API key, comment lines are the heartbeats.

Each event but `ping` has an `id`; reconnect with `Last-Event-ID` (or `?last_event_id=`) to get
exactly the events after it. Reading a stream never starts a
generation. A connection is closed after CHATSITE_STREAM_MAX_SECONDS; reconnect to resume."""


# One event, as an SSE parser hands it over.
EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["reasoning", "delta", "done", "error", "ping"]},
        "data": {"type": "string", "description": "A JSON object, as described above."},
        "id": {"type": "string", "description": "The event's number in this reply."},
        "retry": {"type": "integer", "description": "Milliseconds to wait before reconnecting."},
    },
}


def error_response(description: str) -> dict:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def stream_operation() -> dict:
    return {
        "operationId": "messages_stream",
        "summary": "Follow a reply as Server-Sent Events",
        "description": EVENTS,
        "tags": ["messages"],
        "parameters": [
            {
                "name": "message_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
                "description": "A reply's id.",
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Resume after this event id.",
            },
            {
                "name": "last_event_id",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "The same, for clients without headers.",
            },
        ],
        "security": [{"apiKey": []}, {"cookieAuth": []}],
        "responses": {
            "200": {
                "description": "The reply's events.",
                "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
            },
            "400": error_response("The message is not a reply."),
            "401": error_response("No valid credentials."),
            "404": error_response("Not found, or not yours."),
        },
    }


def add_stream_endpoint(result: dict, generator: object, request: object, public: bool) -> dict:
    result["paths"][STREAM_PATH] = {"get": stream_operation()}
    return result
