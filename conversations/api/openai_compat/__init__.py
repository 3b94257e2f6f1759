"""OpenAI-compatible chat completions: POST /v1/chat/completions, GET /v1/models and
GET /v1/models/{id}.

Tools built for OpenAI's API (its SDKs, editors, agents) talk to chatsite with an API key as
their `base_url`'s key. Each completion is stored as a new conversation of the key's owner,
with budgets, the stored reply and its usage like any chat; the provider's key stays here.
"""
