"""The console's tables of providers and model deployments."""

from __future__ import annotations

from atp_site.console.tables import Column, Table


class ProviderTable(Table):
    columns = (
        Column("name", order_by=None, link="providers:provider-detail"),
        Column("kind", "Protocol", order_by=None),
        Column("region", order_by=None),
        Column("health_status", "Health", template="console/cells/status.html"),
        Column("enabled", order_by=None, template="console/cells/boolean.html"),
        Column("updated_at", "Updated", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "name"
    empty_title = "No providers yet"
    empty_text = (
        "A provider is an upstream ATP calls: OpenAI, Anthropic, Gemini, Ollama or any "
        "OpenAI-compatible server. Add one, then the models it serves."
    )
    empty_action = ("providers:provider-add", "Add a provider", ("providers.provider", "add"))
