"""Region matching, shared by routing (data residency, preferences) and the policies.

No imports: the policy evaluator (apps.policies.engine) uses it outside Django too.
"""

from __future__ import annotations

from collections.abc import Iterable


def region_matches(region: str, wanted: Iterable[str]) -> bool:
    """`eu` admits `eu`, `eu-west` and `eu-west-1`; an unknown region admits nothing."""
    region = (region or "").lower()
    if not region:
        return False
    return any(region == w or region.startswith(w + "-") for w in wanted)
