"""The configuration file's `providers` section: providers with their models
(atp_site.lib.config_file; the format is in docs/configuration.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.providers import selectors, services
from apps.providers.credentials import env_reference_error
from apps.providers.models import ModelDeployment, Provider
from atp_site.lib import config_file as cf
from atp_site.lib import crypto

PROVIDER_KEYS = {
    "name",
    "kind",
    "base_url",
    "api_key",
    "region",
    "timeouts",
    "options",
    "enabled",
    "models",
}
MODEL_KEYS = {
    "name",
    "upstream",
    "aliases",
    "prices",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "quality",
    "region",
    "weight",
    "enabled",
    "listed",
}
PRICE_KEYS = {
    "input": "input_price",
    "output": "output_price",
    "cached_input": "cached_input_price",
    "cache_write": "cache_write_price",
    "reasoning": "reasoning_price",
}
TIMEOUT_KEYS = {
    "connect": "connect_timeout",
    "first_byte": "first_byte_timeout",
    "total": "total_timeout",
}
# Service field names back to the document's keys, so service errors name the right path.
PROVIDER_PATHS = {
    **{v: f"timeouts.{k}" for k, v in TIMEOUT_KEYS.items()},
    "api_key_env": "api_key",
    "api_key_encrypted": "api_key",
}
DEPLOYMENT_PATHS = {
    **{v: f"prices.{k}" for k, v in PRICE_KEYS.items()},
    "public_name": "name",
    "upstream_model": "upstream",
    "quality_score": "quality",
}


@dataclass
class DeploymentSpec:
    path: str
    public_name: str
    fields: dict[str, Any]  # deployment service keyword arguments, except provider


@dataclass
class ProviderSpec:
    path: str
    name: str
    fields: dict[str, Any]  # provider service keyword arguments, except credentials
    api_key: str | None  # a literal key, stored encrypted
    api_key_env: str
    models: list[DeploymentSpec]


def provider_key_env_name(provider_name: str) -> str:
    """The variable an exported file names for a key that is stored encrypted."""
    return f"ATP_PROVIDER_{re.sub(r'[^A-Za-z0-9]', '_', provider_name).upper()}_API_KEY"


def _parse_model(data: Any, path: str) -> DeploymentSpec:
    data = cf.mapping(data, path, MODEL_KEYS)
    name = cf.get(data, "name", path, cf.string, cf.MISSING)
    prices_path = cf.join(path, "prices")
    prices = cf.mapping(
        cf.get(data, "prices", path, cf.an_object, {}), prices_path, set(PRICE_KEYS)
    )
    fields: dict[str, Any] = {
        "upstream_model": cf.get(data, "upstream", path, cf.string, name),
        "aliases": cf.get(data, "aliases", path, cf.string_list, []),
        "context_window": cf.get(data, "context_window", path, cf.positive_int, 128_000),
        "max_output_tokens": cf.get(data, "max_output_tokens", path, cf.positive_int, None),
        "capabilities": cf.get(data, "capabilities", path, cf.string_list, []),
        "quality_score": cf.get(data, "quality", path, cf.fraction, 0.5),
        "region": cf.get(data, "region", path, cf.optional_string, ""),
        "weight": cf.get(data, "weight", path, cf.non_negative_int, 100),
        "enabled": cf.get(data, "enabled", path, cf.boolean, True),
        # false: hidden from /v1/models and callable only through routes.
        "listed": cf.get(data, "listed", path, cf.boolean, True),
    }
    for key, service_field in PRICE_KEYS.items():
        required_default = Decimal(0) if key in ("input", "output") else None
        fields[service_field] = cf.get(prices, key, prices_path, cf.number, required_default)
    return DeploymentSpec(path=path, public_name=name, fields=fields)


def _stored_key_matches(provider: Provider, literal: str) -> bool:
    try:
        return crypto.decrypt(provider.api_key_encrypted) == literal
    except crypto.DecryptionError:
        return False


def _credential_change(provider: Provider, spec: ProviderSpec) -> dict[str, Any]:
    """The provider_update arguments that give the provider the file's credential, if any."""
    if spec.api_key is not None:
        if provider.api_key_env or not _stored_key_matches(provider, spec.api_key):
            return {"api_key": spec.api_key, "api_key_env": ""}
        return {}
    if provider.api_key_env != spec.api_key_env or provider.has_stored_api_key:
        return {"api_key": None, "api_key_env": spec.api_key_env}
    return {}


def _apply_deployments(provider: Provider, specs: list[DeploymentSpec], run: cf.Run) -> None:
    report = run.report
    existing: dict[str, ModelDeployment] = {
        d.public_name: d for d in selectors.deployment_list(provider=provider)
    }
    for spec in specs:
        label = f"{provider.name}/{spec.public_name}"
        current = existing.get(spec.public_name)
        with cf.at(spec.path, DEPLOYMENT_PATHS):
            if current is None:
                services.deployment_create(
                    provider=provider, public_name=spec.public_name, **spec.fields
                )
                report.add("deployment", label, "created")
                continue
            changed = cf.diff(current, spec.fields)
            if changed:
                services.deployment_update(deployment=current, **changed)
                report.add("deployment", label, "updated", tuple(sorted(changed)))
            else:
                report.add("deployment", label, "unchanged")
    if run.prune:
        wanted = {s.public_name for s in specs}
        for name, deployment in existing.items():
            if name not in wanted:
                services.deployment_delete(deployment=deployment)
                report.add("deployment", f"{provider.name}/{name}", "deleted")


def _export_deployment(d: ModelDeployment) -> dict[str, Any]:
    prices = {
        key: cf.number_out(getattr(d, fld))
        for key, fld in PRICE_KEYS.items()
        if getattr(d, fld) is not None
    }
    out: dict[str, Any] = {"name": d.public_name, "upstream": d.upstream_model}
    if d.aliases:
        out["aliases"] = list(d.aliases)
    out["prices"] = prices
    out["context_window"] = d.context_window
    if d.max_output_tokens is not None:
        out["max_output_tokens"] = d.max_output_tokens
    out["capabilities"] = list(d.capabilities)
    out["quality"] = d.quality_score
    if d.region:
        out["region"] = d.region
    out["weight"] = d.weight
    out["enabled"] = d.enabled
    if not d.listed:
        out["listed"] = False
    return out


@cf.register
class ProviderSection(cf.Section):
    key = "providers"
    order = 10
    unique = ("name", "provider name")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> ProviderSpec:
        data = cf.mapping(data, path, PROVIDER_KEYS)
        name = cf.get(data, "name", path, cf.string, cf.MISSING)
        kinds = Provider.Kind.values

        def kind_check(value: Any, kpath: str) -> str:
            if value not in kinds:
                raise cf.ConfigError(kpath, f"must be one of {', '.join(kinds)}")
            return value

        timeouts_path = cf.join(path, "timeouts")
        timeouts = cf.mapping(
            cf.get(data, "timeouts", path, cf.an_object, {}), timeouts_path, set(TIMEOUT_KEYS)
        )
        fields: dict[str, Any] = {
            "kind": cf.get(data, "kind", path, kind_check, cf.MISSING),
            "base_url": cf.get(data, "base_url", path, cf.optional_string, ""),
            "region": cf.get(data, "region", path, cf.optional_string, ""),
            "options": cf.get(data, "options", path, cf.an_object, {}),
            "enabled": cf.get(data, "enabled", path, cf.boolean, True),
        }
        for key, service_field in TIMEOUT_KEYS.items():
            fields[service_field] = cf.get(timeouts, key, timeouts_path, cf.seconds, None)

        api_key, api_key_env = None, ""
        raw_key = cf.get(data, "api_key", path, cf.string, None)
        if raw_key is not None:
            if raw_key.startswith(cf.ENV_PREFIX):
                key_path = cf.join(path, "api_key")
                api_key_env = cf.env_name(raw_key, key_path)
                if problem := env_reference_error(api_key_env):
                    raise cf.ConfigError(key_path, problem)
            else:
                api_key = raw_key

        models_path = cf.join(path, "models")
        models = [
            _parse_model(item, cf.join(models_path, i))
            for i, item in enumerate(cf.items_of(data, "models", path) or [])
        ]
        cf.unique(models, "public_name", models_path, "model name")
        return ProviderSpec(path, name, fields, api_key, api_key_env, models)

    def apply(self, specs: list[ProviderSpec], run: cf.Run) -> None:
        report = run.report
        existing = {p.name: p for p in selectors.provider_list()}
        for spec in specs:
            current = existing.get(spec.name)
            with cf.at(spec.path, PROVIDER_PATHS):
                if current is None:
                    current = services.provider_create(
                        name=spec.name,
                        api_key=spec.api_key,
                        api_key_env=spec.api_key_env,
                        **spec.fields,
                    )
                    report.add("provider", spec.name, "created")
                else:
                    changed = cf.diff(current, spec.fields)
                    credentials = _credential_change(current, spec)
                    if changed or credentials:
                        services.provider_update(provider=current, **changed, **credentials)
                        names = sorted(changed) + (["api_key"] if credentials else [])
                        report.add("provider", spec.name, "updated", tuple(names))
                    else:
                        report.add("provider", spec.name, "unchanged")
            _apply_deployments(current, spec.models, run)
        if run.prune:
            wanted = {s.name for s in specs}
            for name, provider in existing.items():
                if name not in wanted:
                    services.provider_delete(provider=provider)
                    report.add("provider", name, "deleted", ("with its deployments",))

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        return [
            self._export_provider(p, notes)
            for p in selectors.provider_list().prefetch_related("deployments")
        ]

    @staticmethod
    def _export_provider(p: Provider, notes: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": p.name, "kind": p.kind}
        if p.base_url:
            out["base_url"] = p.base_url
        if p.api_key_env:
            out["api_key"] = f"{cf.ENV_PREFIX}{p.api_key_env}"
        elif p.has_stored_api_key:
            env = provider_key_env_name(p.name)
            out["api_key"] = f"{cf.ENV_PREFIX}{env}"
            notes.append(
                f"provider {p.name}: its API key is stored encrypted and not exported; "
                f"set {env} before applying this file."
            )
        if p.region:
            out["region"] = p.region
        timeouts = {
            key: getattr(p, fld) for key, fld in TIMEOUT_KEYS.items() if getattr(p, fld) is not None
        }
        if timeouts:
            out["timeouts"] = timeouts
        if p.options:
            out["options"] = dict(p.options)
        out["enabled"] = p.enabled
        out["models"] = [_export_deployment(d) for d in p.deployments.all()]
        return out
