"""Step: the deployments one request may reach.

A request may reach a deployment when its API key may use it (the key's allow-list; see
`allowed_names`), it lies in a region the request allows (the `region` hint, a hard
constraint), and it can do what is asked (chat or embeddings). Every path that picks a
deployment draws from this one set: a model's load-balanced deployments, a route's
candidates and fallbacks, consensus votes, the challenger mirror (which also keeps to the
tenant's preferred regions), retries, and answers from the response cache. The execute step
refuses to call anything outside it, whatever list it was handed.

The set depends only on the configuration snapshot, the key's allow-list, the regions and
the capability, so it is computed once per combination and kept on the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from apps.routing.engine.hints import parse_hints
from apps.routing.engine.regions import region_matches
from apps.routing.snapshot import DeploymentInfo, KeyInfo, Snapshot

# Distinct (allow-list, regions, capability) combinations kept per snapshot; regions come
# from requests, so the cache is bounded and simply dropped when full.
MAX_REACHES = 4096


@dataclass(frozen=True, slots=True)
class Reach:
    """The ids of the deployments a request may reach."""

    ids: frozenset[str]
    regions: tuple[str, ...] = ()
    capability: str = "chat"

    def __contains__(self, dep: DeploymentInfo) -> bool:
        return dep.id in self.ids

    def filter(self, deployments: Iterable[DeploymentInfo]) -> list[DeploymentInfo]:
        """`deployments` that may be reached, in their order."""
        ids = self.ids
        return [dep for dep in deployments if dep.id in ids]

    def mirror_targets(
        self, deployments: Iterable[DeploymentInfo], preferred: tuple[str, ...]
    ) -> list[DeploymentInfo]:
        """Where a copy of the request may be mirrored: reachable, and in the tenant's
        preferred regions when it has some. A mirror serves the operator's comparison, not
        the caller, so it keeps to the tenant's preference as if it were a constraint."""
        return [
            dep
            for dep in self.filter(deployments)
            if not preferred or region_matches(dep.region, preferred)
        ]


def allowed_names(snapshot: Snapshot, key: KeyInfo) -> frozenset[str] | None:
    """The model names a key restricts any route to; None when it may use every model.

    A key's allow-list may name routes and models: the models named bound what any route
    may choose for that key; a list naming only routes leaves the choice open. A name that
    is both a model and a route (a route in front of a model) counts as a model.
    """
    if key.allowed_models is None:
        return None
    routes, models = snapshot.routes, snapshot.models
    names = frozenset(m for m in key.allowed_models if m not in routes or m in models)
    return names or None


def may_use(dep: DeploymentInfo, allowed: frozenset[str] | None) -> bool:
    """A key allowing a name allows the deployments it names: by public name or alias."""
    return allowed is None or dep.public_name in allowed or not allowed.isdisjoint(dep.aliases)


def _compute(snapshot: Snapshot, key: KeyInfo, regions: tuple[str, ...], capability: str) -> Reach:
    allowed = allowed_names(snapshot, key)
    ids = frozenset(
        dep.id
        for dep in snapshot.deployments
        if may_use(dep, allowed)
        and (not dep.capabilities or capability in dep.capabilities)
        and (not regions or region_matches(dep.region, regions))
    )
    return Reach(ids, regions, capability)


def reach_for(
    snapshot: Snapshot,
    key: KeyInfo,
    *,
    regions: tuple[str, ...] = (),
    capability: str = "chat",
) -> Reach:
    """What a request of `key` asking for `regions` and `capability` may reach."""
    cache_key = (key.allowed_models, regions, capability)
    found = snapshot.reaches.get(cache_key)
    if found is None:
        if len(snapshot.reaches) >= MAX_REACHES:
            snapshot.reaches.clear()
        found = snapshot.reaches[cache_key] = _compute(snapshot, key, regions, capability)
    return found  # type: ignore[return-value]


def narrow(snapshot: Snapshot, reach: Reach, governance: Any) -> Reach:
    """`reach` without what governance keeps the request from (data residency, policies'
    routing constraints; apps.routing.pipeline.govern)."""
    permitted = governance.permitted(snapshot)
    if permitted is None:
        return reach
    return Reach(reach.ids & permitted, reach.regions, reach.capability)


def requested_regions(
    body: Mapping[str, Any], headers: Mapping[bytes, bytes], key: KeyInfo
) -> tuple[str, ...]:
    """The regions a request naming a model (not a route) allows: its `region` hint,
    validated like every routing hint; () when it gives none. Routed requests read it from
    their parsed hints."""
    atp = body.get("atp")
    in_body = isinstance(atp, Mapping) and atp.get("region") is not None
    header = headers.get(b"x-atp-region")
    if not in_body and header is None:
        return ()
    hint_body = {"atp": {"region": atp["region"]}} if in_body else {}  # type: ignore[index]
    hint_headers = {} if in_body else {b"x-atp-region": header}
    return parse_hints(hint_body, hint_headers, key, prompt_tokens=0).regions
