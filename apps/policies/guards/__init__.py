"""Guards over what a request sends to a model: prompt-injection and jailbreak scoring."""

from __future__ import annotations

from apps.policies.guards.injection import (
    DEFAULT_THRESHOLD,
    InjectionVerdict,
    scan_messages,
    score_text,
)

__all__ = ["DEFAULT_THRESHOLD", "InjectionVerdict", "scan_messages", "score_text"]
