"""Whether one request may be answered from the cache, and whether its answer may be stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_THRESHOLD = 0.92


class RouteCacheConfig(Protocol):
    """The cache settings of a route (a `Route` row or the snapshot's view of one)."""

    name: str
    cache_ttl_seconds: int
    semantic_cache: bool
    semantic_threshold: float


@dataclass(slots=True)
class CachePolicy:
    """The cache decision for one request. Build one per request with `policy_for`.

    `enabled` says the route caches at all (so the answer carries an `x-atp-cache` header);
    `lookup` and `store` may still be off for this request, and `reason` says why.
    """

    route: str
    enabled: bool
    lookup: bool
    store: bool
    ttl: int
    semantic: bool
    threshold: float
    reason: str
    max_age: int | None = None  # from `Cache-Control: max-age=N`: accept no older answer
    # Derived from the request once and reused by lookup and store (see engine._prepare).
    prepared: Any = field(default=None, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.lookup or self.store


def _header(headers: Mapping[Any, Any], name: str) -> str:
    """A request header by lower-case name; the edge hands them over as bytes."""
    value = headers.get(name.encode())
    if value is None:
        value = headers.get(name)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value or ""


def _cache_control(value: str) -> tuple[set[str], int | None]:
    directives: set[str] = set()
    max_age: int | None = None
    for part in value.lower().split(","):
        token = part.strip()
        if token.startswith("max-age="):
            try:
                max_age = max(0, int(token[len("max-age=") :].strip('"')))
            except ValueError:
                continue
        elif token:
            directives.add(token)
    return directives, max_age


def _opt_in(body: dict[str, Any], headers: Mapping[Any, Any]) -> bool | None:
    """The caller's explicit choice: `atp.cache` in the body or an `X-ATP-Cache` header."""
    atp = body.get("atp")
    if isinstance(atp, dict) and isinstance(atp.get("cache"), bool):
        return atp["cache"]
    value = _header(headers, "x-atp-cache").strip().lower()
    if value in ("true", "1", "on"):
        return True
    if value in ("false", "0", "off"):
        return False
    return None


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _off(route: str, reason: str, *, enabled: bool = False) -> CachePolicy:
    return CachePolicy(
        route=route,
        enabled=enabled,
        lookup=False,
        store=False,
        ttl=0,
        semantic=False,
        threshold=DEFAULT_THRESHOLD,
        reason=reason,
    )


def policy_for(
    route_cfg: RouteCacheConfig | None, body: dict[str, Any], headers: Mapping[Any, Any]
) -> CachePolicy:
    """Decide how the cache treats this request.

    Cached: requests on a route with `cache_ttl_seconds > 0` that are deterministic
    (`temperature: 0`) or explicitly opted in (`atp.cache: true` or `X-ATP-Cache: true`).
    Never: sampled requests asking for several choices (`n > 1` with temperature above 0),
    whose point is to get different answers. `Cache-Control: no-cache` skips the look-up
    but stores the fresh answer; `no-store` does neither.
    """
    if route_cfg is None:
        return _off("", "no route")
    route = route_cfg.name
    ttl = int(route_cfg.cache_ttl_seconds or 0)
    if ttl <= 0:
        return _off(route, "cache off for the route")
    opt_in = _opt_in(body, headers)
    if opt_in is False:
        return _off(route, "opted out", enabled=True)
    temperature = _number(body.get("temperature"), 1.0)
    n = _number(body.get("n"), 1.0)
    if n > 1 and temperature > 0:
        return _off(route, "several sampled choices", enabled=True)
    if temperature != 0 and not opt_in:
        return _off(route, "not deterministic", enabled=True)
    directives, max_age = _cache_control(_header(headers, "cache-control"))
    if "no-store" in directives:
        return _off(route, "no-store", enabled=True)
    lookup = "no-cache" not in directives and max_age != 0
    threshold = _number(getattr(route_cfg, "semantic_threshold", None), DEFAULT_THRESHOLD)
    return CachePolicy(
        route=route,
        enabled=True,
        lookup=lookup,
        store=True,
        ttl=ttl,
        semantic=bool(getattr(route_cfg, "semantic_cache", False)),
        threshold=threshold,
        reason=("opted in" if opt_in else "deterministic") if lookup else "no-cache",
        max_age=max_age,
    )
