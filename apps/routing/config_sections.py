"""The configuration file's `routes` section (atp_site.lib.config_file; the format is in
docs/configuration.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.routing import route_services
from apps.routing.models import Route
from atp_site.lib import config_file as cf


@dataclass
class RouteSpec:
    path: str
    name: str
    fields: dict[str, Any]  # route service keyword arguments, except name


@cf.register
class RouteSection(cf.Section):
    key = "routes"
    order = 30
    unique = ("name", "route name")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> RouteSpec:
        """Types are checked here; ranges and keys inside the objects by the route service."""
        data = cf.mapping(data, path, route_services.ROUTE_FIELDS)
        name = cf.get(data, "name", path, cf.string, cf.MISSING)
        get = cf.get
        fields: dict[str, Any] = {
            "description": get(data, "description", path, cf.optional_string, ""),
            "enabled": get(data, "enabled", path, cf.boolean, True),
            # Left out: a built-in route's own, else the route's default (Route's docstring).
            "strategy": get(data, "strategy", path, cf.choice(Route.Strategy.values), ""),
            "tier": get(data, "tier", path, cf.choice(Route.Tier.values), ""),
            "candidates": get(data, "candidates", path, cf.string_list, []),
            "candidate_filter": get(data, "candidate_filter", path, cf.an_object, {}),
            "fallbacks": get(data, "fallbacks", path, cf.string_list, []),
            "retry": get(data, "retry", path, cf.an_object, {}),
            "timeouts": get(data, "timeouts", path, cf.an_object, {}),
            "exploration": get(data, "exploration", path, cf.boolean, True),
            "exploration_rate": get(data, "exploration_rate", path, cf.fraction, 0.1),
            "challenger": get(data, "challenger", path, cf.optional_string, ""),
            "challenger_share": get(data, "challenger_share", path, cf.fraction, 0.0),
            "cache_ttl_seconds": get(data, "cache_ttl_seconds", path, cf.non_negative_int, 0),
            "semantic_cache": get(data, "semantic_cache", path, cf.boolean, False),
            "semantic_threshold": get(data, "semantic_threshold", path, cf.fraction, 0.92),
        }
        return RouteSpec(path, name, fields)

    def apply(self, specs: list[RouteSpec], run: cf.Run) -> None:
        report = run.report
        existing = {r.name: r for r in Route.objects.all()}
        for spec in specs:
            current = existing.get(spec.name)
            with cf.at(spec.path):
                if current is None:
                    route_services.route_create(name=spec.name, **spec.fields)
                    report.add("route", spec.name, "created")
                    continue
                changed = cf.diff(current, spec.fields)
                if changed:
                    route_services.route_update(route=current, **changed)
                    report.add("route", spec.name, "updated", tuple(sorted(changed)))
                else:
                    report.add("route", spec.name, "unchanged")
        if run.prune:
            wanted = {s.name for s in specs}
            for name, route in existing.items():
                if name not in wanted:
                    route_services.route_delete(route=route)
                    report.add("route", name, "deleted")

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        return [_export_route(r) for r in Route.objects.order_by("name")]


def _export_route(r: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name}
    if r.description:
        out["description"] = r.description
    out["enabled"] = r.enabled
    if r.strategy:
        out["strategy"] = r.strategy
    if r.tier:
        out["tier"] = r.tier
    out.update(
        {
            "candidates": list(r.candidates or []),
            "candidate_filter": dict(r.candidate_filter or {}),
            "fallbacks": list(r.fallbacks or []),
            "retry": dict(r.retry or {}),
            "timeouts": dict(r.timeouts or {}),
            "exploration": r.exploration,
            "exploration_rate": r.exploration_rate,
        }
    )
    if r.challenger:
        out["challenger"] = r.challenger
    out["challenger_share"] = r.challenger_share
    out["cache_ttl_seconds"] = r.cache_ttl_seconds
    out["semantic_cache"] = r.semantic_cache
    out["semantic_threshold"] = r.semantic_threshold
    return out
