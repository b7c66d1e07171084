"""The data plane's in-memory view of configuration: keys, deployments, providers.

Built from the database on a cold path and swapped atomically; every request reads the
current snapshot without a query. A process notices a configuration change when the
configuration version (atp_site.lib.config_version) differs from the one its snapshot
was built at; it checks at most every ATP_SNAPSHOT_CHECK_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.costs.limits import NO_LIMITS, KeyLimits, compile_limits
from apps.costs.pricing import Prices
from apps.providers.adapters.base import Target
from apps.providers.credentials import provider_api_key
from apps.routing.engine.regions import region_matches
from atp_site.lib import config_version
from atp_site.lib.hot_settings import hot

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the data plane knows about one API key."""

    id: str
    tenant_id: str
    tenant_slug: str
    name: str
    allowed_models: frozenset[str] | None  # None: every model
    expires_at: float | None  # epoch seconds
    revoked: bool
    tenant_active: bool
    store_bodies: bool = False
    cost_mode: str = "balanced"
    preferred_regions: tuple[str, ...] = ()
    carbon_aware: bool = False
    project_id: str | None = None
    # Rate limits, budgets and service priority (apps.costs.limits), compiled per snapshot.
    limits: KeyLimits = NO_LIMITS
    # A key replaced by a rotation, still accepted until `expires_at` (its grace period).
    rotated: bool = False
    # Governance: the classification of a request that gives none (the key's, else the
    # tenant's), and the regions its requests may be served in (tenant and key together).
    classification: str = "internal"
    allowed_regions: tuple[str, ...] = ()

    def may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """One callable deployment: its target, prices and capabilities."""

    id: str
    public_name: str
    aliases: tuple[str, ...]
    provider_id: str
    provider_name: str
    target: Target
    prices: Prices
    capabilities: frozenset[str]
    context_window: int
    weight: int
    region: str
    quality: float
    created: int
    listed: bool = True  # False: reachable through routes only
    # Price versions still to come when the snapshot was built, as (start in epoch seconds,
    # prices) in order: a request that starts after one is costed at it
    # (apps.costs.catalog.prices_at); `prices` are those in force at the build.
    upcoming_prices: tuple[tuple[float, Prices], ...] = ()


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """A route as the data plane sees it (see apps.routing.models.Route), its strategy and
    tier already resolved (a blank one inherited). `wraps` names the model a route of the
    same name puts itself in front of."""

    name: str
    description: str = ""
    candidates: tuple[str, ...] = ()
    candidate_filter: dict = field(default_factory=dict)
    strategy: str = "score"
    tier: str = "balanced"
    fallbacks: tuple[str, ...] = ()
    retry: dict = field(default_factory=dict)
    timeouts: dict = field(default_factory=dict)
    exploration: bool = True
    exploration_rate: float = 0.1
    challenger: str = ""
    challenger_share: float = 0.0
    cache_ttl_seconds: int = 0
    semantic_cache: bool = False
    semantic_threshold: float = 0.92
    builtin: bool = False
    created: int = 0
    wraps: str = ""


# The routes every installation has; a Route row of the same name overrides one.
BUILTIN_ROUTES: dict[str, RouteInfo] = {
    "auto": RouteInfo(
        name="auto",
        description="Learns per kind of request; quality tier from the request or tenant.",
        strategy="learned",
        tier="balanced",
        builtin=True,
    ),
    "atp/fast": RouteInfo(
        name="atp/fast",
        description="Quick answers: latency weighs most, then cost; learns per kind of request.",
        strategy="learned",
        tier="fast",
        builtin=True,
    ),
    "atp/balanced": RouteInfo(
        name="atp/balanced",
        description="Learns per kind of request which model gives the most quality per cost.",
        strategy="learned",
        tier="balanced",
        builtin=True,
    ),
    "atp/high": RouteInfo(
        name="atp/high",
        description="The best answer: quality weighs most; learns per kind of request.",
        strategy="learned",
        tier="high",
        builtin=True,
    ),
}


@dataclass(slots=True)
class Snapshot:
    version: int
    keys: dict[str, KeyInfo] = field(default_factory=dict)  # by key hash
    # Every model name (public names and aliases) -> its enabled deployments, listed or not:
    # what routes resolve their candidates, fallbacks and challengers through.
    models: dict[str, list[DeploymentInfo]] = field(default_factory=dict)
    # The names callers may name directly and see in /v1/models -> their listed deployments.
    listed: dict[str, list[DeploymentInfo]] = field(default_factory=dict)
    public_names: list[str] = field(default_factory=list)  # sorted names of `listed`
    # Every enabled deployment once, and the routes by name (built-ins included).
    deployments: list[DeploymentInfo] = field(default_factory=list)
    routes: dict[str, RouteInfo] = field(default_factory=lambda: dict(BUILTIN_ROUTES))
    # Route candidate pools by (route, key allow-list, capability), filled on first use
    # (apps.routing.pipeline.plan.route_pool); a configuration change builds a new snapshot.
    pools: dict[tuple, list[DeploymentInfo]] = field(default_factory=dict)
    # What a request may reach, by (key allow-list, regions, capability), filled on first
    # use (apps.routing.pipeline.reach).
    reaches: dict[tuple, object] = field(default_factory=dict)
    # The enabled policies, compiled (apps.policies.engine.Evaluator); None: none loaded.
    policies: object = None


def _decimal_or_none(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _allowed_regions(key) -> tuple[str, ...]:
    """The regions a key's requests may be served in: the tenant's, narrowed by the key's.

    A key naming regions outside the tenant's gets only the overlap (the tenant's list
    holds regions and region prefixes such as "eu"; a key region counts when it lies
    within one of them). Empty: any region."""
    tenant = tuple(r.lower() for r in key.tenant.allowed_regions or ())
    own = tuple(r.lower() for r in key.allowed_regions or ())
    if not own:
        return tenant
    if not tenant:
        return own
    inside = tuple(r for r in own if region_matches(r, tenant))
    # Nothing in common: a region no deployment has, so nothing is reachable.
    return inside or ("(none)",)


def build_snapshot(version: int) -> Snapshot:
    """Read the configuration (a handful of queries) into a new snapshot."""
    from apps.providers.models import ModelDeployment
    from apps.tenants.models import ApiKey

    snap = Snapshot(version=version)
    now = time.time()
    keys = list(ApiKey.objects.select_related("tenant", "project"))
    limits = compile_limits(keys, now=now)
    for key in keys:
        expires_at = key.expires_at.timestamp() if key.expires_at else None
        grace = key.grace_until.timestamp() if key.grace_until else None
        rotated = key.revoked_at is not None and grace is not None and grace > now
        if rotated:
            expires_at = grace if expires_at is None else min(expires_at, grace)
        snap.keys[key.key_hash] = KeyInfo(
            id=str(key.id),
            tenant_id=str(key.tenant_id),
            tenant_slug=key.tenant.slug,
            name=key.name,
            allowed_models=frozenset(key.allowed_models) if key.allowed_models else None,
            expires_at=expires_at,
            revoked=key.revoked_at is not None and not rotated,
            tenant_active=key.tenant.is_active,
            store_bodies=key.tenant.store_bodies,
            cost_mode=key.tenant.cost_mode,
            preferred_regions=tuple(key.tenant.preferred_regions or ()),
            carbon_aware=key.tenant.carbon_aware,
            project_id=str(key.project_id) if key.project_id else None,
            limits=limits[str(key.id)],
            rotated=rotated,
            classification=key.data_classification or key.tenant.data_classification,
            allowed_regions=_allowed_regions(key),
        )

    deployments = ModelDeployment.objects.select_related("provider").filter(
        enabled=True, provider__enabled=True
    )
    from apps.costs.catalog import price_book

    book = price_book(now)
    for dep in deployments:
        provider = dep.provider
        api_key = provider_api_key(provider)
        target = Target(
            provider_id=str(provider.id),
            provider_name=provider.name,
            kind=provider.kind,
            base_url=provider.base_url.rstrip("/"),
            upstream_model=dep.upstream_model,
            api_key=api_key,
            connect_timeout=provider.connect_timeout or settings.ATP_UPSTREAM_CONNECT_TIMEOUT,
            first_byte_timeout=provider.first_byte_timeout
            or settings.ATP_UPSTREAM_FIRST_BYTE_TIMEOUT,
            total_timeout=provider.total_timeout or settings.ATP_UPSTREAM_TOTAL_TIMEOUT,
            options=dict(provider.options or {}),
            max_output_tokens=dep.max_output_tokens,
        )
        in_force, upcoming = book.get(str(dep.id), (None, ()))
        info = DeploymentInfo(
            id=str(dep.id),
            public_name=dep.public_name,
            aliases=tuple(dep.aliases or ()),
            provider_id=str(provider.id),
            provider_name=provider.name,
            target=target,
            prices=in_force
            or Prices(
                input=Decimal(dep.input_price),
                output=Decimal(dep.output_price),
                cached_input=_decimal_or_none(dep.cached_input_price),
                cache_write=_decimal_or_none(dep.cache_write_price),
                reasoning=_decimal_or_none(dep.reasoning_price),
            ),
            capabilities=frozenset(dep.capabilities or ()),
            context_window=dep.context_window,
            weight=dep.weight,
            region=dep.region or provider.region,
            quality=dep.quality_score,
            created=int(dep.created_at.timestamp()),
            listed=dep.listed,
            upcoming_prices=upcoming,
        )
        snap.deployments.append(info)
        for name in (dep.public_name, *info.aliases):
            snap.models.setdefault(name, []).append(info)
            if info.listed:
                snap.listed.setdefault(name, []).append(info)
    snap.public_names = sorted(snap.listed)

    from apps.routing.models import Route

    for route in Route.objects.all():
        if not route.enabled:
            snap.routes.pop(route.name, None)
            continue
        builtin = BUILTIN_ROUTES.get(route.name)
        wraps = route.name if builtin is None and route.name in snap.models else ""
        if builtin is not None:
            # An override keeps what it does not change.
            strategy, tier = builtin.strategy, builtin.tier
        elif wraps:
            # In front of a model: share its traffic as the bare model name does.
            strategy, tier = settings.ATP_LOAD_BALANCING, "balanced"
        else:
            strategy, tier = "score", "balanced"
        snap.routes[route.name] = RouteInfo(
            name=route.name,
            description=route.description or (builtin.description if builtin else ""),
            candidates=tuple(route.candidates or ()),
            candidate_filter=dict(route.candidate_filter or {}),
            strategy=route.strategy or strategy,
            tier=route.tier or tier,
            fallbacks=tuple(route.fallbacks or ()),
            retry=dict(route.retry or {}),
            timeouts=dict(route.timeouts or {}),
            exploration=route.exploration,
            exploration_rate=route.exploration_rate,
            challenger=route.challenger,
            challenger_share=route.challenger_share,
            cache_ttl_seconds=route.cache_ttl_seconds,
            semantic_cache=route.semantic_cache,
            semantic_threshold=route.semantic_threshold,
            created=int(route.created_at.timestamp()),
            builtin=builtin is not None,
            wraps=wraps,
        )
    from apps.policies.engine import load_evaluator

    snap.policies = load_evaluator()
    return snap


class SnapshotHolder:
    """Holds the process's current snapshot and refreshes it when the version moves."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    async def get(self) -> Snapshot:
        snap = self._snapshot
        now = time.monotonic()
        if snap is not None and now - self._checked_at < hot.ATP_SNAPSHOT_CHECK_SECONDS:
            return snap
        # Claim this interval's check before awaiting, so requests arriving meanwhile keep
        # using the current snapshot instead of piling up behind the same look-up.
        self._checked_at = now
        try:
            version = await config_version.acurrent()
        except Exception:
            if snap is None:
                raise
            logger.warning("configuration version check failed; keeping the current snapshot")
            return snap
        if snap is not None and snap.version == version:
            return snap
        async with self._get_lock():
            snap = self._snapshot
            if snap is None or snap.version != version:
                snap = await sync_to_async(build_snapshot, thread_sensitive=True)(version)
                self._snapshot = snap
                logger.info(
                    "configuration snapshot %s: %d keys, %d model names",
                    version,
                    len(snap.keys),
                    len(snap.models),
                )
            return snap

    def invalidate(self) -> None:
        self._snapshot = None
        self._checked_at = 0.0


holder = SnapshotHolder()
