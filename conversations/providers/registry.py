"""Which models are available: every provider whose key (or base URL) is set, else the demo.

Models are named `provider:name` so several providers can offer the same model name.
"""

from functools import cache

from django.conf import settings

from conversations.providers.anthropic import AnthropicProvider
from conversations.providers.base import ModelChoice, Provider
from conversations.providers.dashscope import DashScopeProvider
from conversations.providers.demo import DemoProvider
from conversations.providers.openai import OpenAICompatibleProvider
from conversations.providers.zhipu import ZhipuProvider


@cache
def providers() -> dict[str, tuple[Provider, list[str]]]:
    """Each configured provider with its model names, in the order they are offered."""
    configured: dict[str, tuple[Provider, list[str]]] = {}
    if settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY:
        base_url = settings.OPENAI_BASE_URL or "https://api.openai.com/v1"
        configured["openai"] = (
            OpenAICompatibleProvider(base_url, settings.OPENAI_API_KEY),
            settings.OPENAI_MODELS,
        )
    for name, (provider, models) in extra_providers().items():
        configured[name] = (provider, models)
    if settings.CHATSITE_DEMO or not configured:
        configured["demo"] = (DemoProvider(), ["chatsite-demo"])
    return configured


def extra_providers() -> dict[str, tuple[Provider, list[str]]]:
    """DashScope, Zhipu and Anthropic, each when its key is set."""
    extra: dict[str, tuple[Provider, list[str]]] = {}
    if settings.DASHSCOPE_API_KEY:
        extra["dashscope"] = (
            DashScopeProvider(
                settings.DASHSCOPE_BASE_URL,
                settings.DASHSCOPE_API_KEY,
                non_incremental=settings.DASHSCOPE_NON_INCREMENTAL_MODELS,
            ),
            settings.DASHSCOPE_MODELS,
        )
    if settings.ZHIPUAI_API_KEY:
        extra["zhipu"] = (
            ZhipuProvider(settings.ZHIPUAI_BASE_URL, settings.ZHIPUAI_API_KEY),
            settings.ZHIPUAI_MODELS,
        )
    if settings.ANTHROPIC_API_KEY:
        extra["anthropic"] = (
            AnthropicProvider(
                settings.ANTHROPIC_BASE_URL,
                settings.ANTHROPIC_API_KEY,
                settings.ANTHROPIC_MAX_TOKENS,
            ),
            settings.ANTHROPIC_MODELS,
        )
    return extra


@cache
def available_models() -> list[ModelChoice]:
    non_streaming = set(settings.CHATSITE_NON_STREAMING_MODELS)
    choices = []
    for provider_name, (provider, names) in providers().items():
        for name in names:
            model_id = f"{provider_name}:{name}"
            choices.append(
                ModelChoice(
                    provider=provider_name,
                    name=name,
                    label=f"{name} ({provider.label})",
                    is_default=not choices,
                    stream=model_id not in non_streaming,
                )
            )
    return choices


def find_model(model_id: str) -> ModelChoice | None:
    return next((choice for choice in available_models() if choice.id == model_id), None)


def default_model() -> ModelChoice:
    return available_models()[0]


def provider_for(choice: ModelChoice) -> Provider:
    return providers()[choice.provider][0]


def reset() -> None:
    """Forget the configuration (tests change settings)."""
    providers.cache_clear()
    available_models.cache_clear()
