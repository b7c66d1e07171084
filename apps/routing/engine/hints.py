"""Routing hints: what a request asks of the router, from its `atp` object, headers and tenant.

Sources, strongest first: the `atp` object in the body (what OpenAI SDKs send through
`extra_body`), the `X-ATP-*` request headers, then the tenant's routing preferences. Needs
the request itself implies (tools, images, JSON mode, a context window that fits the
prompt plus the output) are detected from the body and cannot be switched off.

A region given by the request is a hard constraint (data residency); the tenant's
preferred regions only make candidates in those regions score higher.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.providers.tokens import estimate_prompt_tokens
from apps.routing.snapshot import KeyInfo
from atp_site.lib.errors import InvalidRequest
from atp_site.lib.identifiers import control_free

TIERS = ("fast", "balanced", "high")
COST_MODES = ("aggressive", "balanced", "quality_first")
# The capability names deployments declare (apps.providers.models.Capability).
CAPABILITIES = frozenset({"chat", "embeddings", "tools", "vision", "json", "streaming"})

# When a request sets no output limit, cost is estimated for this many output tokens: a
# typical chat answer. The context-window check then only needs the prompt to fit.
DEFAULT_EXPECTED_OUTPUT_TOKENS = 256

# The prompt text kept for task clustering: the kind of request shows in its first
# thousands of characters; a long document pasted after the instruction adds nothing.
MAX_PROMPT_CHARS = 4000

_IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(slots=True)
class RoutingRequest:
    """Everything the router needs to know about one request, already validated."""

    tier: str | None = None  # None: the route's own tier
    cost_mode: str = "balanced"
    max_cost_usd: float | None = None
    latency_slo_ms: float | None = None
    regions: tuple[str, ...] = ()  # hard constraint; empty: any region
    preferred_regions: tuple[str, ...] = ()  # soft preference (tenant)
    required_capabilities: frozenset[str] = frozenset()  # asked for and detected together
    carbon_aware: bool = False
    prompt_tokens: int = 0
    max_output_tokens: int | None = None
    detected_needs: frozenset[str] = frozenset()
    prompt_text: str = ""
    sources: dict[str, str] = field(default_factory=dict)  # hint -> body|header|tenant

    @property
    def expected_output_tokens(self) -> int:
        return self.max_output_tokens or DEFAULT_EXPECTED_OUTPUT_TOKENS

    @property
    def min_context_window(self) -> int:
        return self.prompt_tokens + (self.max_output_tokens or 0)


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_routing_hint")


def _tier(value: Any, param: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in TIERS:
        raise _bad(param, f"'{param}' must be one of fast, balanced or high.")
    return value.strip().lower()


def _positive(value: Any, param: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _bad(param, f"'{param}' must be a positive number.") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(param, f"'{param}' must be a positive number.")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise _bad(param, f"'{param}' must be a positive number.")
    return number


def _names(value: Any, param: str) -> tuple[str, ...]:
    """A list of names, or one string of comma-separated names (the header form)."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise _bad(param, f"'{param}' must be a name or a list of names.")
    if not items or not all(items):
        raise _bad(param, f"'{param}' must not contain empty names.")
    if not all(control_free(item) for item in items):
        raise _bad(param, f"'{param}' must not contain control characters.")
    return tuple(dict.fromkeys(item.lower() for item in items))


def _capabilities(value: Any, param: str) -> frozenset[str]:
    names = _names(value, param)
    unknown = [n for n in names if n not in CAPABILITIES]
    if unknown:
        raise _bad(
            param,
            f"'{param}' has unknown capabilities {unknown}; choose from {sorted(CAPABILITIES)}.",
        )
    return frozenset(names)


def _boolean(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(param, f"'{param}' must be true or false.")


def _cache_flag(value: Any, param: str) -> bool:
    """The response cache opt-in, as apps.routing.cache.policy reads it: a boolean in the
    body, true/1/on or false/0/off in the header."""
    if isinstance(value, bool):
        return value
    if param.startswith("X-") and isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "on", "false", "0", "off"):
            return text in ("true", "1", "on")
        raise _bad(param, f"'{param}' must be true or false.")
    raise _bad(param, f"'{param}' must be true or false.")


# hint name in the `atp` object -> (header, parser)
_HINTS = {
    "quality": ("x-atp-quality", _tier),
    "max_cost_usd": ("x-atp-max-cost-usd", _positive),
    "latency_slo_ms": ("x-atp-latency-slo-ms", _positive),
    "region": ("x-atp-region", _names),
    "required_capabilities": ("x-atp-required-capabilities", _capabilities),
    "carbon_aware": ("x-atp-carbon-aware", _boolean),
    "cache": ("x-atp-cache", _cache_flag),
}
_HEADER_TITLES = {
    "x-atp-quality": "X-ATP-Quality",
    "x-atp-max-cost-usd": "X-ATP-Max-Cost-USD",
    "x-atp-latency-slo-ms": "X-ATP-Latency-SLO-MS",
    "x-atp-region": "X-ATP-Region",
    "x-atp-required-capabilities": "X-ATP-Required-Capabilities",
    "x-atp-carbon-aware": "X-ATP-Carbon-Aware",
    "x-atp-cache": "X-ATP-Cache",
}
# What else the `atp` object may carry: parsed by its own step (apps.routing.pipeline).
OTHER_ATP_FIELDS = frozenset(
    # consensus: apps.routing.pipeline.ensemble; the rest: apps.routing.pipeline.govern.
    {"consensus", "data_classification", "end_user_role", "end_user_groups"}
)
ATP_FIELDS = frozenset(_HINTS) | OTHER_ATP_FIELDS
# Headers of the governance step (apps.routing.pipeline.govern), validated there.
GOVERNANCE_HEADERS = frozenset(
    {b"x-atp-data-classification", b"x-atp-end-user-role", b"x-atp-end-user-groups"}
)
# Every X-ATP-* request header ATP reads; any other is refused like an unknown hint.
REQUEST_HEADERS = frozenset(header.encode() for header, _ in _HINTS.values()) | GOVERNANCE_HEADERS


def explicit_hints(body: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> dict:
    """The hints a request gives in its `atp` object and X-ATP-* headers, each validated:
    a bad value, an unknown hint name or an unknown X-ATP-* header is a 400 naming it
    (`atp.<name>` or the header). Every /v1 request that takes hints calls this, whether
    or not its `model` names a route, so a bad hint is never silently ignored."""
    atp = body.get("atp")
    if atp is None:
        atp = {}
    elif not isinstance(atp, Mapping):
        raise _bad("atp", "'atp' must be an object.")
    for name in atp:
        if name not in ATP_FIELDS:
            if not isinstance(name, str) or not control_free(name):
                raise _bad("atp", "'atp' holds a name with control characters.")
            raise _bad(
                f"atp.{name}",
                f"'atp.{name}' is not a hint ATP knows; use {', '.join(sorted(ATP_FIELDS))}.",
            )
    found: dict[str, tuple[Any, str]] = {}
    for name, (header, parse) in _HINTS.items():
        if atp.get(name) is not None:
            found[name] = (parse(atp[name], f"atp.{name}"), "body")
            continue
        raw = headers.get(header.encode())
        if raw is None:
            continue
        try:
            text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        except (UnicodeDecodeError, AttributeError):
            text = ""
        found[name] = (parse(text, _HEADER_TITLES[header]), "header")
    for raw_name in headers:
        if raw_name[:6] == b"x-atp-" and raw_name not in REQUEST_HEADERS:
            title = raw_name.decode("latin-1")
            if not control_free(title):
                title = "X-ATP-*"
            raise _bad(
                title,
                f"The header '{title}' is not one ATP reads; use "
                f"{', '.join(sorted(_HEADER_TITLES.values()))}.",
            )
    return found


def _content_text(content: Any) -> tuple[str, bool]:
    """The text of one message's content and whether it carries an image."""
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        return "", False
    texts = []
    vision = False
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") in _IMAGE_PART_TYPES:
            vision = True
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts), vision


def _message_parts(messages: list) -> tuple[list[str], bool]:
    """The conversation's texts, the latest user turn first (it says what is asked now),
    then the others in order; and whether any message carries an image."""
    texts: list[str] = []
    vision = False
    latest = -1
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        text, has_image = _content_text(message.get("content"))
        vision = vision or has_image
        if message.get("role") == "user":
            latest = len(texts)
        texts.append(text)
    if latest > 0:
        texts.insert(0, texts.pop(latest))
    return [t for t in texts if t], vision


def prompt_text(texts: list[str]) -> str:
    """The text the task clusterer sees: the latest user turn first, then the rest of the
    conversation, cut to MAX_PROMPT_CHARS."""
    text = "\n".join(texts)
    if len(text) <= MAX_PROMPT_CHARS:
        return text
    # The instruction is at the start of the latest turn, or at its end after a long
    # document; keep both ends.
    head = MAX_PROMPT_CHARS * 2 // 3
    return text[:head] + "\n" + text[-(MAX_PROMPT_CHARS - head) :]


def detect_needs(body: Mapping[str, Any]) -> tuple[frozenset[str], list[str]]:
    """Capabilities the body needs by itself (tools, vision, JSON mode), and the
    conversation's texts for the task clusterer."""
    needs = set()
    if body.get("tools") or body.get("functions"):
        needs.add("tools")
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
        needs.add("json")
    messages = body.get("messages")
    texts, vision = _message_parts(messages if isinstance(messages, list) else [])
    if vision:
        needs.add("vision")
    return frozenset(needs), texts


def _max_output(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def parse_hints(
    body: Mapping[str, Any],
    headers: Mapping[bytes, bytes],
    key: KeyInfo,
    *,
    prompt_tokens: int | None = None,
    explicit: dict | None = None,
) -> RoutingRequest:
    """The RoutingRequest of one chat request; raises InvalidRequest naming a bad hint.

    `headers` are ASGI headers (lower-case names). Pass `prompt_tokens` when the pipeline
    has already counted them, to skip counting twice, and `explicit` when it has already
    read the hints (explicit_hints).
    """
    hints = explicit_hints(body, headers) if explicit is None else explicit
    needs, texts = detect_needs(body)
    # The cache opt-in is validated with the hints but is not a routing constraint.
    sources = {name: source for name, (_, source) in hints.items() if name != "cache"}

    def hint(name: str, default: Any) -> Any:
        return hints[name][0] if name in hints else default

    carbon = hint("carbon_aware", None)
    if carbon is None:
        carbon = key.carbon_aware
        if carbon:
            sources["carbon_aware"] = "tenant"
    # A request that names its own quality tier has said what it wants; the tenant's
    # cost mode only steers requests that say nothing.
    cost_mode = key.cost_mode if key.cost_mode in COST_MODES else "balanced"
    if "quality" in hints:
        cost_mode = "balanced"
    elif cost_mode != "balanced":
        sources["cost_mode"] = "tenant"
    preferred = tuple(r.lower() for r in key.preferred_regions)
    if preferred:
        sources["preferred_regions"] = "tenant"
    if prompt_tokens is None:
        prompt_tokens = estimate_prompt_tokens(body)
    return RoutingRequest(
        tier=hint("quality", None),
        cost_mode=cost_mode,
        max_cost_usd=hint("max_cost_usd", None),
        latency_slo_ms=hint("latency_slo_ms", None),
        regions=hint("region", ()),
        preferred_regions=preferred,
        required_capabilities=hint("required_capabilities", frozenset()) | needs,
        carbon_aware=bool(carbon),
        prompt_tokens=prompt_tokens,
        max_output_tokens=_max_output(body),
        detected_needs=needs,
        prompt_text=prompt_text(texts),
        sources=sources,
    )
