"""Persisting what the router learnt (BanditArm rows, task clusters) and reading it back.

The data plane learns in memory and Redis; `learning_persist` copies that to the database
periodically (Celery task `routing.persist_learning`) and `learning_load` restores it when a
process starts, so a restart, or a Redis flush, does not forget. `learned_summary` is the
console's read of it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.routing.engine.bandit import FIELDS, ArmStats
from apps.routing.engine.router import RoutingEngine, get_engine
from apps.routing.models import BanditArm, LearnedState

logger = logging.getLogger(__name__)

CLUSTERS_STATE_KEY = "routing.task_clusters"


def learning_persist(engine: RoutingEngine | None = None) -> dict[str, int]:
    """Write every arm's sums (Redis's totals when shared) and the task clusters."""
    engine = engine or get_engine()
    snapshot = engine.store.snapshot()
    existing = {(a.route, a.cluster, a.model): a for a in BanditArm.objects.all()}
    to_create, to_update = [], []
    for (route, cluster), arms in snapshot.items():
        for model, stats in arms.items():
            row = existing.get((route, cluster, model))
            if row is None:
                row = BanditArm(route=route, cluster=cluster, model=model)
                to_create.append(row)
            else:
                to_update.append(row)
            for name in FIELDS:
                setattr(row, name, getattr(stats, name))
    clusters = _clusters_to_persist(engine)
    with transaction.atomic():
        BanditArm.objects.bulk_create(to_create, batch_size=500)
        if to_update:
            BanditArm.objects.bulk_update(to_update, FIELDS, batch_size=500)
        if clusters is not None:
            LearnedState.objects.update_or_create(
                key=CLUSTERS_STATE_KEY, defaults={"data": clusters}
            )
    return {
        "arms_created": len(to_create),
        "arms_updated": len(to_update),
        "clusters_saved": int(clusters is not None),
    }


def _clusters_to_persist(engine: RoutingEngine) -> dict[str, Any] | None:
    """The task clusters that saw the most documents: those the serving processes
    published to Redis, or this process's own when it has learnt anything (embedded mode,
    where tasks run in the serving process). None: nothing learnt, keep what is stored."""
    candidates = engine.store.published_clusters()
    own = engine.clusters
    if own.featurizer.documents > own.seed_documents:
        candidates.append(own.state())
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.get("featurizer") or {}).get("documents", 0))


def learning_load(engine: RoutingEngine | None = None) -> dict[str, int]:
    """Restore persisted arms (where the store knows nothing of them) and task clusters."""
    engine = engine or get_engine()
    rows = [
        (arm.route, arm.cluster, arm.model, ArmStats(**{n: getattr(arm, n) for n in FIELDS}))
        for arm in BanditArm.objects.all()
    ]
    loaded = engine.store.seed(rows)
    state = LearnedState.objects.filter(key=CLUSTERS_STATE_KEY).first()
    clusters = 0
    if state is not None and state.data.get("clusters"):
        engine.clusters.load_state(state.data)
        clusters = len(engine.clusters.clusters)
    return {"arms": loaded, "clusters": clusters}


def learned_summary(route: str | None = None) -> list[dict[str, Any]]:
    """Per route and task cluster, what was learnt: arms with pulls, failures, mean
    feedback score, mean cost and latency; best arm first. Reads the persisted rows."""
    arms = BanditArm.objects.all()
    if route is not None:
        arms = arms.filter(route=route)
    labels: dict[int, str] = {}
    state = LearnedState.objects.filter(key=CLUSTERS_STATE_KEY).first()
    if state is not None:
        labels = {int(c["id"]): c["label"] for c in state.data.get("clusters", [])}
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for arm in arms:
        stats = ArmStats(**{n: getattr(arm, n) for n in FIELDS})
        groups.setdefault((arm.route, arm.cluster), []).append(
            {
                "model": arm.model,
                "pulls": int(stats.pulls),
                "failures": int(stats.failures),
                "feedback": int(stats.feedback_count),
                "mean_reward": stats.mean_reward,
                "mean_cost_usd": stats.mean_cost,
                "mean_latency_ms": stats.mean_latency_ms,
                "updated_at": arm.updated_at,
            }
        )
    out = []
    for (route_name, cluster), rows in sorted(groups.items()):
        rows.sort(key=lambda r: (r["mean_reward"] or 0.0, r["pulls"]), reverse=True)
        out.append(
            {
                "route": route_name,
                "cluster": cluster,
                "label": labels.get(cluster, f"cluster-{cluster}"),
                "pulls": sum(r["pulls"] for r in rows),
                "arms": rows,
            }
        )
    return out
