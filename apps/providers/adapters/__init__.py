"""Provider adapters: one module per wire protocol behind `base.Adapter`."""

from __future__ import annotations

from importlib import import_module

from apps.providers.adapters.base import Adapter

# Provider kind -> "module:Class" under apps.providers.adapters.
ADAPTERS: dict[str, str] = {
    "openai": "openai:OpenAIAdapter",
    "openai_compatible": "openai:OpenAIAdapter",
    "anthropic": "anthropic:AnthropicAdapter",
    "gemini": "gemini:GeminiAdapter",
    "ollama": "ollama:OllamaAdapter",
    "simulator": "simulator:SimulatorAdapter",
}

_instances: dict[str, Adapter] = {}


def get_adapter(kind: str) -> Adapter:
    """The shared adapter instance for a provider kind (adapters hold no per-call state)."""
    adapter = _instances.get(kind)
    if adapter is None:
        module_name, _, class_name = ADAPTERS[kind].partition(":")
        module = import_module(f"apps.providers.adapters.{module_name}")
        adapter = getattr(module, class_name)()
        _instances[kind] = adapter
    return adapter
