"""The console's tables of providers and model deployments."""

from __future__ import annotations

from atp_site.console.tables import Column, Table


class ProviderTable(Table):
    columns = (
        Column("name", order_by=None, link="providers:provider-detail"),
        Column("kind", "Protocol", accessor="get_kind_display", order_by=None),
        Column("base_url", "Base URL", classes="mono"),
        Column("region", order_by=None),
        Column("health_status", "Health", template="console/cells/status.html"),
        Column("health_latency_ms", "Latency (ms)", classes="num"),
        Column("deployment_count", "Models", classes="num"),
        Column("enabled", template="console/cells/boolean.html"),
        Column("updated_at", "Updated", template="console/cells/datetime.html"),
    )
    default_order = "name"
    empty_title = "No providers yet"
    empty_text = (
        "A provider is an upstream ATP calls: OpenAI, Anthropic, Gemini, Ollama or any "
        "OpenAI-compatible server. Add one, then the models it serves."
    )
    empty_action = ("providers:provider-add", "Add a provider", ("providers.provider", "add"))


def _capabilities(row) -> str:
    return ", ".join(row.capabilities or ()) or "—"


class DeploymentTable(Table):
    columns = (
        Column("public_name", "Public name", order_by=None, link="providers:deployment-detail"),
        Column(
            "provider",
            accessor="provider.name",
            link="providers:provider-detail",
            link_arg="provider_id",
        ),
        Column("upstream_model", "Upstream model", order_by=None, classes="mono"),
        Column("input_price", "Input $/1M", order_by=None, template="console/cells/usd.html"),
        Column("output_price", "Output $/1M", order_by=None, template="console/cells/usd.html"),
        Column(
            "context_window",
            "Context",
            accessor=lambda row: f"{row.context_window:,}",
            order_by=None,
            classes="num",
        ),
        Column("capabilities", accessor=_capabilities),
        Column("enabled", template="console/cells/boolean.html"),
        Column("listed", template="console/cells/boolean.html"),
    )
    default_order = "public_name"
    empty_title = "No models yet"
    empty_text = (
        "A model is what callers name in their requests, served by one provider under its "
        "upstream name, with its prices and capabilities. Add a provider first, then its models."
    )
    empty_action = ("providers:deployment-add", "Add a model", ("providers.modeldeployment", "add"))


class HealthCheckTable(Table):
    """The provider's health history (a bounded table: ATP_HEALTH_HISTORY rows each)."""

    columns = (
        Column("checked_at", "Checked", order_by=None, template="console/cells/datetime.html"),
        Column("status", template="console/cells/status.html"),
        Column("latency_ms", "Latency (ms)", classes="num"),
        Column("error"),
    )
    default_order = "-checked_at"
    per_page = 20
    empty_title = "Never checked"
    empty_text = "Test the connection, or wait for the periodic health check."
