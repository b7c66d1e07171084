"""The `atpctl` commands: ATP's management REST API from a shell (docs/cli.md)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from atpctl import __version__, contexts
from atpctl.client import Client
from atpctl.errors import CHECK_FAILED, REFUSED, USAGE, CLIError, one_line
from atpctl.output import FORMATS, render_object, render_rows

COMPLETE_VAR = "_ATPCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


class State:
    """The global options, and the API client made from them on first use."""

    def __init__(
        self, config: str | None, context: str | None, server: str | None, token: str | None
    ):
        self.path = contexts.config_path(config)
        self.context = context
        self.server = server
        self.token = token
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            target = contexts.resolve(
                path=self.path, context=self.context, server=self.server, token=self.token
            )
            self._client = Client(target)
            click.get_current_context().call_on_close(self._client.close)
        return self._client


pass_state = click.make_pass_decorator(State)


def _context_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    root = ctx.find_root()
    try:
        data = contexts.load(contexts.config_path(root.params.get("config")))
    except CLIError:
        return []
    return [CompletionItem(name) for name in data["contexts"] if str(name).startswith(incomplete)]


def output_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(function)


def emit(text: str) -> None:
    click.echo(text, nl=False)


def write_download(response: Any, path: str | None) -> int:
    """Copy a streamed download to `path` (or standard output); the bytes written."""
    written = 0
    if path and path != "-":
        try:
            with open(path, "wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    written += len(chunk)
        except OSError as exc:
            raise CLIError(f"cannot write {path}: {exc.strerror}", REFUSED) from None
        return written
    out = click.get_binary_stream("stdout")
    for chunk in response.iter_bytes():
        out.write(chunk)
        written += len(chunk)
    out.flush()
    return written


# --- the root --------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="The contexts file (default: $ATPCTL_CONFIG, else ~/.config/atpctl/config.yaml).",
)
@click.option(
    "--context",
    shell_complete=_context_names,
    help="Use this context instead of the current one ($ATPCTL_CONTEXT).",
)
@click.option("--server", help="The server's URL, overriding the context's ($ATP_SERVER).")
@click.option(
    "--token",
    help="An admin token, overriding the context's ($ATP_TOKEN; prefer the variable, "
    "a flag shows in the process list).",
)
@click.version_option(__version__, prog_name="atpctl")
@click.pass_context
def cli(
    ctx: click.Context,
    config: str | None,
    context: str | None,
    server: str | None,
    token: str | None,
) -> None:
    """ATP's command-line client: providers, models, routes, keys, budgets, usage, the audit
    log and the configuration file, through a server's management API."""
    ctx.obj = State(config, context, server, token)


# --- config: contexts --------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Contexts: the servers atpctl talks to and their admin tokens."""


@config_group.command("set-context")
@click.argument("name", shell_complete=_context_names)
@click.option("--server", "server_url", help="The server's URL (https://atp.example.com).")
@click.option("--token", "token_value", help="An admin token (atpadm_...).")
@click.option(
    "--token-stdin", is_flag=True, help="Read the admin token from standard input instead."
)
@click.option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle to verify TLS with.")
@click.option(
    "--insecure-skip-tls-verify/--verify-tls",
    default=None,
    help="Skip (or restore) TLS certificate verification.",
)
@click.option("--use", "use_it", is_flag=True, help="Also make it the current context.")
@pass_state
def set_context(
    state: State,
    name: str,
    server_url: str | None,
    token_value: str | None,
    token_stdin: bool,
    ca_file: str | None,
    insecure_skip_tls_verify: bool | None,
    use_it: bool,
) -> None:
    """Create or update the context NAME; unset options keep their values."""
    if token_stdin:
        if token_value:
            raise click.UsageError("give --token or --token-stdin, not both")
        token_value = click.get_text_stream("stdin").readline().strip()
        if not token_value:
            raise click.UsageError("no token on standard input")
    data = contexts.load(state.path)
    entry = dict(data["contexts"].get(name) or {})
    if server_url:
        entry["server"] = contexts.check_server(server_url)
    if token_value:
        entry["token"] = token_value
    if ca_file:
        entry["ca-file"] = str(Path(ca_file).expanduser().resolve())
    if insecure_skip_tls_verify is not None:
        entry["insecure-skip-tls-verify"] = insecure_skip_tls_verify
    if "server" not in entry:
        raise click.UsageError(f"context {name!r} needs --server")
    data["contexts"][name] = entry
    if use_it or not data.get("current-context"):
        data["current-context"] = name
    contexts.save(state.path, data)
    click.echo(f"Context {name!r} saved in {state.path}.", err=True)


@config_group.command("use-context")
@click.argument("name", shell_complete=_context_names)
@pass_state
def use_context(state: State, name: str) -> None:
    """Make NAME the current context."""
    data = contexts.load(state.path)
    if name not in data["contexts"]:
        raise CLIError(f"no context named {name!r} in {state.path}", USAGE)
    data["current-context"] = name
    contexts.save(state.path, data)
    click.echo(f"Switched to context {name!r}.", err=True)


@config_group.command("delete-context")
@click.argument("name", shell_complete=_context_names)
@pass_state
def delete_context(state: State, name: str) -> None:
    """Remove the context NAME."""
    data = contexts.load(state.path)
    if data["contexts"].pop(name, None) is None:
        raise CLIError(f"no context named {name!r} in {state.path}", USAGE)
    if data.get("current-context") == name:
        data["current-context"] = None
    contexts.save(state.path, data)
    click.echo(f"Deleted context {name!r}.", err=True)


@config_group.command("get-contexts")
@output_option
@pass_state
def get_contexts(state: State, fmt: str) -> None:
    """List the contexts; tokens are shown masked."""
    data = contexts.load(state.path)
    rows = [
        {
            "current": "*" if name == data.get("current-context") else "",
            "name": name,
            "server": entry.get("server", ""),
            "token": contexts.mask(entry.get("token")),
        }
        for name, entry in data["contexts"].items()
    ]
    emit(render_rows(rows, ["current", "name", "server", "token"], fmt))


@config_group.command("current-context")
@pass_state
def current_context(state: State) -> None:
    """Print the current context's name."""
    name = contexts.load(state.path).get("current-context")
    if not name:
        raise CLIError("no current context: run `atpctl config use-context NAME`", USAGE)
    click.echo(name)


# --- providers ---------------------------------------------------------------------------------

PROVIDER_COLUMNS = ["name", "kind", "region", "enabled", "has_api_key", "base_url", "id"]


@cli.group("providers")
def providers_group() -> None:
    """Providers: list, test, enable, disable."""


@providers_group.command("list")
@click.option("--kind", help="Only providers of this kind (openai, anthropic, simulator, ...).")
@output_option
@pass_state
def providers_list(state: State, kind: str | None, fmt: str) -> None:
    """List providers."""
    rows = state.client().list("providers/", kind=kind, ordering="name")
    emit(render_rows(rows, PROVIDER_COLUMNS, fmt))


@providers_group.command("get")
@click.argument("provider")
@output_option
@pass_state
def providers_get(state: State, provider: str, fmt: str) -> None:
    """Show PROVIDER (a name or an id)."""
    emit(render_object(state.client().provider(provider), fmt))


@providers_group.command("test")
@click.argument("provider")
@output_option
@pass_state
def providers_test(state: State, provider: str, fmt: str) -> None:
    """Call PROVIDER's upstream now and show how it answered (exit 7 when it is down)."""
    client = state.client()
    found = client.provider(provider)
    result = client.post(f"providers/{found['id']}/test/")
    result = {"name": found["name"], **result}
    emit(render_object(result, fmt, ["name", "status", "latency_ms", "error", "checked_at"]))
    if result.get("status") == "down":
        raise CLIError(
            f"provider {found['name']} is down: {result.get('error') or 'no answer'}", CHECK_FAILED
        )


def _set_enabled(state: State, provider: str, enabled: bool, fmt: str) -> None:
    client = state.client()
    found = client.provider(provider)
    changed = client.patch(f"providers/{found['id']}/", {"enabled": enabled})
    emit(render_object(changed, fmt, ["name", "enabled", "id"]))


@providers_group.command("enable")
@click.argument("provider")
@output_option
@pass_state
def providers_enable(state: State, provider: str, fmt: str) -> None:
    """Enable PROVIDER: it may be routed to again."""
    _set_enabled(state, provider, True, fmt)


@providers_group.command("disable")
@click.argument("provider")
@output_option
@pass_state
def providers_disable(state: State, provider: str, fmt: str) -> None:
    """Disable PROVIDER: it is never routed to until enabled."""
    _set_enabled(state, provider, False, fmt)


# --- models ------------------------------------------------------------------------------------

MODEL_COLUMNS = [
    "public_name",
    "provider",
    "upstream_model",
    "input_price",
    "output_price",
    "context_window",
    "quality_score",
    "region",
    "enabled",
    "listed",
]


@cli.group("models")
def models_group() -> None:
    """Model deployments (a model offered by a provider)."""


@models_group.command("list")
@click.option("--provider", help="Only this provider's models (a name or an id).")
@output_option
@pass_state
def models_list(state: State, provider: str | None, fmt: str) -> None:
    """List model deployments with their prices (USD per million tokens)."""
    client = state.client()
    provider_id = client.provider(provider)["id"] if provider else None
    rows = client.list("deployments/", provider=provider_id, ordering="public_name")
    emit(render_rows(rows, MODEL_COLUMNS, fmt))


# --- routes ------------------------------------------------------------------------------------

ROUTE_COLUMNS = ["name", "enabled", "strategy", "tier", "candidates", "fallbacks", "description"]
RANKING_COLUMNS = [
    "rank",
    "model",
    "provider",
    "score",
    "estimated_cost_usd",
    "estimated_latency_ms",
    "quality",
    "chosen",
]


@cli.group("routes")
def routes_group() -> None:
    """Routes: list them, or see how one would route a prompt."""


@routes_group.command("list")
@output_option
@pass_state
def routes_list(state: State, fmt: str) -> None:
    """List the routes defined on the server (the built-ins are not listed)."""
    rows = state.client().list("routes/", ordering="name")
    emit(render_rows(rows, ROUTE_COLUMNS, fmt))


@routes_group.command("get")
@click.argument("route")
@output_option
@pass_state
def routes_get(state: State, route: str, fmt: str) -> None:
    """Show ROUTE (a name or an id)."""
    emit(render_object(state.client().route(route), fmt))


def _hint(value: str) -> tuple[str, Any]:
    name, sep, raw = value.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint="--hint")
    try:
        return name.strip(), json.loads(raw)
    except ValueError:
        return name.strip(), raw


@routes_group.command("simulate")
@click.argument("route", default="auto")
@click.option(
    "-p", "--prompt", required=True, help="The prompt to rank ('-' reads standard input)."
)
@click.option(
    "--hint",
    "hints",
    multiple=True,
    help="A routing hint NAME=VALUE (the `atp` object; VALUE is JSON when it parses): "
    "quality=high, max_cost_usd=0.01, region=eu, required_capabilities='[\"tools\"]'.",
)
@click.option("--key", help="Rank as this API key would (an id or TENANT/NAME).")
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000))
@output_option
@pass_state
def routes_simulate(
    state: State,
    route: str,
    prompt: str,
    hints: tuple[str, ...],
    key: str | None,
    max_tokens: int | None,
    fmt: str,
) -> None:
    """Rank the models ROUTE (default: auto) would choose for a prompt; nothing is sent to
    any provider. The table lists the ranking, the choice marked."""
    client = state.client()
    if prompt == "-":
        prompt = click.get_text_stream("stdin").read()
    body: dict[str, Any] = {"route": route, "prompt": prompt, "hints": dict(map(_hint, hints))}
    if key:
        body["key"] = client.api_key(key)["id"]
    if max_tokens:
        body["max_tokens"] = max_tokens
    result = client.post("routes/simulate/", body)
    if fmt in ("json", "yaml"):
        emit(render_object(result, fmt))
        return
    emit(render_rows(result.get("recommendations", []), RANKING_COLUMNS, fmt))


# --- keys --------------------------------------------------------------------------------------

KEY_COLUMNS = [
    "tenant",
    "name",
    "prefix",
    "project",
    "plan",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "id",
]
KEY_FIELDS = ["tenant", "name", "prefix", "project", "plan", "expires_at", "grace_until", "id"]


@cli.group("keys")
def keys_group() -> None:
    """API keys: list, create, rotate, revoke. A key is named by its id or as TENANT/NAME."""


def _with_tenant_slugs(client: Client, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose `tenant` (an id) reads as the tenant's slug in tables and CSV."""
    try:
        slugs = {t["id"]: t["slug"] for t in client.list("tenants/")}
    except CLIError:
        return rows  # tenants the caller may not list stay ids
    return [{**row, "tenant": slugs.get(row.get("tenant"), row.get("tenant"))} for row in rows]


@keys_group.command("list")
@click.option("--tenant", help="Only this tenant's keys (a slug or an id).")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@output_option
@pass_state
def keys_list(state: State, tenant: str | None, include_revoked: bool, fmt: str) -> None:
    """List API keys (live ones unless --all)."""
    client = state.client()
    tenant_id = client.tenant(tenant)["id"] if tenant else None
    rows = client.list(
        "api-keys/", tenant=tenant_id, revoked=None if include_revoked else False, ordering="name"
    )
    if fmt in ("table", "csv"):
        rows = _with_tenant_slugs(client, rows)
    emit(render_rows(rows, KEY_COLUMNS, fmt))


def _show_new_key(client: Client, created: dict[str, Any], fmt: str) -> None:
    if fmt in ("table", "csv"):
        created = _with_tenant_slugs(client, [created])[0]
    emit(render_object(created, fmt, [*KEY_FIELDS, "key"]))
    click.echo("The key is shown this once: store it now.", err=True)


@keys_group.command("create")
@click.argument("name")
@click.option("--tenant", required=True, help="The tenant (a slug or an id).")
@click.option("--project", help="One of the tenant's projects (a slug or an id).")
@click.option(
    "--allowed-model",
    "allowed_models",
    multiple=True,
    help="A model the key may use (repeat); none: every model.",
)
@click.option("--expires-at", help="ISO 8601 date and time (2027-01-01T00:00:00Z).")
@click.option(
    "--plan",
    type=click.Choice(["free", "premium", "enterprise"]),
    help="Overrides the tenant's plan.",
)
@output_option
@pass_state
def keys_create(
    state: State,
    name: str,
    tenant: str,
    project: str | None,
    allowed_models: tuple[str, ...],
    expires_at: str | None,
    plan: str | None,
    fmt: str,
) -> None:
    """Create the API key NAME; its plaintext is shown once."""
    client = state.client()
    found = client.tenant(tenant)
    body: dict[str, Any] = {"tenant": found["id"], "name": name}
    if project:
        body["project"] = client.project(found, project)["id"]
    if allowed_models:
        body["allowed_models"] = list(allowed_models)
    if expires_at:
        body["expires_at"] = expires_at
    if plan:
        body["plan"] = plan
    _show_new_key(client, client.post("api-keys/", body), fmt)


@keys_group.command("rotate")
@click.argument("key")
@click.option(
    "--grace-seconds",
    type=click.IntRange(min=0),
    help="How long the old key keeps working (0: it stops now; default: the server's).",
)
@output_option
@pass_state
def keys_rotate(state: State, key: str, grace_seconds: int | None, fmt: str) -> None:
    """Replace KEY by a new key with the same name and settings; the new plaintext is shown
    once, and the old key stops working after the grace period."""
    client = state.client()
    found = client.api_key(key)
    body = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
    _show_new_key(client, client.post(f"api-keys/{found['id']}/rotate/", body), fmt)


@keys_group.command("revoke")
@click.argument("key")
@output_option
@pass_state
def keys_revoke(state: State, key: str, fmt: str) -> None:
    """Revoke KEY: it is refused from now on."""
    client = state.client()
    found = client.api_key(key)
    revoked = client.post(f"api-keys/{found['id']}/revoke/")
    if fmt in ("table", "csv"):
        revoked = _with_tenant_slugs(client, [revoked])[0]
    emit(render_object(revoked, fmt, ["tenant", "name", "prefix", "revoked_at", "id"]))


# --- budgets and usage -------------------------------------------------------------------------

BUDGET_COLUMNS = ["name", "target", "period", "limit_usd", "spent_usd", "action", "enabled", "id"]
MEASURES = [
    "requests",
    "cached_requests",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "savings_usd",
]


@cli.group("budgets")
def budgets_group() -> None:
    """Budgets of tenants, projects and keys."""


@budgets_group.command("list")
@click.option("--tenant", help="Only this tenant's budgets (a slug or an id).")
@output_option
@pass_state
def budgets_list(state: State, tenant: str | None, fmt: str) -> None:
    """List budgets with the current period's spend."""
    client = state.client()
    tenant_id = client.tenant(tenant)["id"] if tenant else None
    emit(render_rows(client.list("budgets/", tenant=tenant_id), BUDGET_COLUMNS, fmt))


@cli.group("usage")
def usage_group() -> None:
    """Spend and tokens."""


@usage_group.command("show")
@click.option("--start", help="ISO 8601 date or datetime (default: 30 days ago).")
@click.option("--end", help="Exclusive; a date includes that whole day.")
@click.option("--tenant", help="A tenant's slug or id.")
@click.option("--model", help="A public model name.")
@click.option("--provider", help="A provider's name or id.")
@click.option("--route", help="A route's name.")
@click.option(
    "--group-by",
    help="Comma-separated: tenant, project, key, model, provider, route, day, hour.",
)
@output_option
@pass_state
def usage_show(
    state: State,
    start: str | None,
    end: str | None,
    tenant: str | None,
    model: str | None,
    provider: str | None,
    route: str | None,
    group_by: str | None,
    fmt: str,
) -> None:
    """Requests, tokens, cost and savings, one row per group (one row of totals without
    --group-by)."""
    groups = [g.strip() for g in (group_by or "").split(",") if g.strip()]
    rows = state.client().list(
        "usage/",
        start=start,
        end=end,
        tenant=tenant,
        model=model,
        provider=provider,
        route=route,
        group_by=groups or None,
    )
    names = {"key": "api_key"}
    emit(render_rows(rows, [names.get(g, g) for g in groups] + MEASURES, fmt))


@usage_group.command("forecast")
@click.option("--tenant", required=True, help="A tenant's slug or id.")
@output_option
@pass_state
def usage_forecast(state: State, tenant: str, fmt: str) -> None:
    """The next 30 days' spend of a tenant."""
    result = state.client().get("usage/forecast/", tenant=tenant)
    emit(
        render_object(
            result, fmt, ["tenant", "method", "start", "days", "total_usd", "history_days"]
        )
    )


# --- audit -------------------------------------------------------------------------------------


@cli.group("audit")
def audit_group() -> None:
    """The audit log: verify the chain, export events, download the compliance report."""


@audit_group.command("verify")
@click.option("--full", is_flag=True, help="Walk the whole chain, not only what is new.")
@output_option
@pass_state
def audit_verify(state: State, full: bool, fmt: str) -> None:
    """Verify the audit chain (exit 7 when it is broken)."""
    result = state.client().get("audit/verify/", full=full)
    fields = [
        "status",
        "checked",
        "head_sequence",
        "head_hash",
        "start_sequence",
        "full",
        "problem",
    ]
    emit(render_object(result, fmt, fields))
    if result.get("status") != "ok":
        problem = result.get("problem") or {}
        detail = problem.get("message") or problem.get("kind") or "see the report"
        raise CLIError(f"the audit chain is broken: {detail}", CHECK_FAILED)


def _write_note(what: str, path: str | None, rows: str | None = None) -> None:
    if path and path != "-":
        count = f"{rows} " if rows else ""
        click.echo(f"Wrote {count}{what} to {path}.", err=True)


@audit_group.command("export")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "json", "jsonl"]),
    default="csv",
    show_default=True,
)
@click.option("--since", help="ISO 8601 date or datetime.")
@click.option("--until", help="ISO 8601 date or datetime.")
@click.option("--tenant", help="A tenant's slug or id.")
@click.option("--event-type", help="Only events of this type.")
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False),
    help="Write here instead of standard output.",
)
@pass_state
def audit_export(
    state: State,
    file_format: str,
    since: str | None,
    until: str | None,
    tenant: str | None,
    event_type: str | None,
    path: str | None,
) -> None:
    """Download the events matching the filters (JSON and JSON Lines end with the signed
    manifest). The export is itself audited."""
    with state.client().stream(
        "audit/export/",
        format=file_format,
        since=since,
        until=until,
        tenant=tenant,
        event_type=event_type,
    ) as response:
        write_download(response, path)
        rows = response.headers.get("X-ATP-Rows")
    _write_note("events", path, rows)


@audit_group.command("report")
@click.option("--since", required=True, help="ISO 8601 date or datetime.")
@click.option(
    "--until", required=True, help="ISO 8601 date or datetime (a date includes that day)."
)
@click.option("--tenant", help="A tenant's slug or id; none: every tenant.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["json", "csv", "pdf"]),
    default="json",
    show_default=True,
)
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False),
    help="Write here instead of standard output.",
)
@pass_state
def audit_report(
    state: State,
    since: str,
    until: str,
    tenant: str | None,
    file_format: str,
    path: str | None,
) -> None:
    """Download the compliance report of a period. The download is audited."""
    if file_format == "pdf" and not path and sys.stdout.isatty():
        raise click.UsageError("a PDF goes to a file: give --file PATH (or redirect the output)")
    with state.client().stream(
        "audit/report/", format=file_format, since=since, until=until, tenant=tenant
    ) as response:
        write_download(response, path)
    _write_note("the report", path)


# --- the configuration file --------------------------------------------------------------------

CHANGE_COLUMNS = ["kind", "name", "action", "fields", "key"]


@cli.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The configuration file (YAML, the atp_apply format; '-' for standard input).",
)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--prune", is_flag=True, help="Also delete what the file's sections no longer list.")
@output_option
@pass_state
def apply_command(state: State, path: str, dry_run: bool, prune: bool, fmt: str) -> None:
    """Apply a configuration file on the server, as `manage.py atp_apply` does there
    (docs/configuration.md). Superusers only."""
    try:
        if path == "-":
            document = click.get_binary_stream("stdin").read()
        else:
            document = Path(path).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}", REFUSED) from None
    report = (
        state.client()
        .request(
            "POST",
            "config/apply",
            content=document,
            headers={"Content-Type": "application/yaml"},
            params={
                "dry_run": "true" if dry_run else "false",
                "prune": "true" if prune else "false",
            },
        )
        .json()
    )
    if fmt == "table":
        emit(_report_text(report))
    elif fmt == "csv":
        emit(render_rows(report["changes"], CHANGE_COLUMNS, fmt))
    else:
        emit(render_object(report, fmt))


def _report_text(report: dict[str, Any]) -> str:
    """The report as atp_apply prints it: one line a change, then the summary."""
    lines = []
    for change in report["changes"]:
        line = f"{change['kind']} {change['name']}: {change['action']}"
        if change.get("fields"):
            line += f" ({', '.join(change['fields'])})"
        lines.append(line)
        if change.get("key"):
            lines.append(f"    key (shown once, store it now): {change['key']}")
    lines.append(report["summary"])
    return "\n".join(lines) + "\n"


@cli.command("export")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
)
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False),
    help="Write here instead of standard output.",
)
@pass_state
def export_command(state: State, file_format: str, path: str | None) -> None:
    """Export the server's configuration in the atp_apply format, as `manage.py atp_export`
    does (secrets as env: references). Superusers only; audited."""
    with state.client().stream("config/export", format=file_format) as response:
        write_download(response, path)
    _write_note("the configuration", path)


# --- shell completion --------------------------------------------------------------------------


@cli.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(atpctl completion bash)"        (in ~/.bashrc)
    zsh:   eval "$(atpctl completion zsh)"         (in ~/.zshrc)
    fish:  atpctl completion fish > ~/.config/fish/completions/atpctl.fish
    """
    complete_class = get_completion_class(shell)
    assert complete_class is not None  # every SHELLS entry is one of click's
    emit(complete_class(cli, {}, "atpctl", COMPLETE_VAR).source())


# --- the entry point ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run atpctl; every failure ends as one line on standard error and a documented exit
    status (docs/cli.md)."""
    try:
        code = cli.main(
            args=argv, prog_name="atpctl", complete_var=COMPLETE_VAR, standalone_mode=False
        )
    except CLIError as exc:
        click.echo(f"atpctl: {exc.message}", err=True)
        sys.exit(exc.code)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message(), err=True)
        sys.exit(USAGE)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"atpctl: {one_line(exc.format_message())}{hint}", err=True)
        sys.exit(USAGE)
    except click.ClickException as exc:
        click.echo(f"atpctl: {one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("atpctl: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("atpctl: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (atpctl ... | head): nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(REFUSED)
    except Exception as exc:
        if os.environ.get("ATPCTL_DEBUG"):
            raise
        click.echo(
            f"atpctl: unexpected error: {one_line(repr(exc))} (ATPCTL_DEBUG=1 shows where)",
            err=True,
        )
        sys.exit(REFUSED)
    sys.exit(code if isinstance(code, int) else 0)
