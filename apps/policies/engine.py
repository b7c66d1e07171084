"""The policy evaluator: enabled policies compiled once per configuration snapshot.

Pure Python, no database access when evaluating. `compile_policies` turns policy specs
into an `Evaluator`; `load_evaluator` reads the enabled policies from the database (the
snapshot build, a cold path). docs/policies.md documents the attributes, operators,
effects and the evaluation order implemented here:

1. The policies in scope of a request are the global ones and those of its tenant whose
   scope (projects, keys, end-user groups, classifications) covers the request, walked by
   priority (higher first), a tenant's before a global one at equal priority, then by name.
   Rules are walked in their listed order.
2. An enforced `allow` rule that matches ends the walk for lower-priority policies of the
   same owner (the same tenant, or the global ones): it carves an exception out of the
   general rules below it. Policies of the same priority are still walked, and a tenant's
   allow never skips a global policy.
3. Deny overrides: any enforced `deny` that matches denies the request, whatever the
   priority of the allows that also matched. The first one in walk order is reported.
4. Every other matching effect combines, the strictest winning: redaction modes per entity
   type (block > remove > hash > mask), route constraints (regions intersected, local-only
   if any says so, excluded providers united), the lowest cost cap, the shortest retention,
   the strongest injection guard, the widest egress guard.
5. Rules with `resource.*` conditions decide about deployments, not the request: when their
   request conditions hold, a `deny` removes each deployment its resource conditions match
   (`Decision.deployment_reason`, the routing engine's policy hook).
6. Log-only policies never change the decision: every rule of theirs that matches is
   reported in `Decision.logged`, as what they would have done.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from apps.routing.engine.regions import region_matches

# --- vocabulary --------------------------------------------------------------------------

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
CLASSIFICATION_RANK = MappingProxyType({name: i for i, name in enumerate(CLASSIFICATIONS)})
# `ask` is the native routing API (POST /v1/ask).
ENDPOINTS = ("chat", "messages", "embeddings", "responses", "realtime", "ask")
REDACT_MODES = ("mask", "hash", "remove", "block")
REDACT_STRENGTH = MappingProxyType({m: i for i, m in enumerate(REDACT_MODES)})
GUARD_ACTIONS = ("allow", "flag", "block")
GUARD_STRENGTH = MappingProxyType({a: i for i, a in enumerate(GUARD_ACTIONS)})
EGRESS_MODES = ("mask", "block")
EFFECTS = ("allow", "deny", "redact", "route", "cap_cost", "retention", "guard")
MODES = ("enforce", "log_only")
# Provider kinds whose models run on the gateway's own hardware.
LOCAL_KINDS = frozenset({"ollama", "simulator"})
MAX_PATTERN = 200

# Attribute types: str, set (of strings), int, float, bool, class (an ordered
# classification), any (a hint: whatever the caller sent).
ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "subject.tenant": "str",
        "subject.project": "str",
        "subject.key": "str",
        "subject.end_user": "str",
        "subject.role": "str",
        "subject.groups": "set",
        "resource.model": "str",
        "resource.provider": "str",
        "resource.region": "str",
        "resource.capabilities": "set",
        "resource.local": "bool",
        "resource.input_price": "float",
        "resource.output_price": "float",
        "request.endpoint": "str",
        "request.classification": "class",
        "request.entities": "set",
        "request.tokens": "int",
        "request.cost_usd": "float",
        "request.hour": "int",
        "request.weekday": "int",
        "request.model": "str",
    }
)
HINT_PREFIX = "request.hints."
# Operators each attribute type accepts.
OPERATORS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "str": frozenset({"eq", "ne", "in", "not_in", "matches", "exists"}),
        "set": frozenset({"contains", "contains_any", "exists"}),
        "int": frozenset(
            {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists"}
        ),
        "float": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"}),
        "bool": frozenset({"eq", "ne", "exists"}),
        "class": frozenset(
            {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists"}
        ),
        "any": frozenset(
            {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "matches", "exists"}
        ),
    }
)
ALL_OPERATORS = frozenset().union(*OPERATORS.values()) | {"contains", "contains_any"}
# Attributes whose `between` may wrap around (22..6 is the night).
CYCLIC = MappingProxyType({"request.hour": 24, "request.weekday": 7})


def attribute_type(attr: str) -> str | None:
    if attr.startswith(HINT_PREFIX):
        name = attr[len(HINT_PREFIX) :]
        return "any" if name and name.replace("_", "").replace("-", "").isalnum() else None
    return ATTRIBUTES.get(attr)


def is_resource(attr: str) -> bool:
    return attr.startswith("resource.")


def is_local(dep: Any) -> bool:
    """resource.local: a deployment served by a local runtime (Ollama, the built-in
    simulator), or one whose capabilities say `local`."""
    target = getattr(dep, "target", None)
    return getattr(target, "kind", "") in LOCAL_KINDS or "local" in dep.capabilities


class _ReadOnlyDict(dict):
    """A dict that refuses changes, hashable so dataclasses take it as a default."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("read-only mapping")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]


NO_HINTS: Mapping[str, Any] = _ReadOnlyDict()

# --- specs and results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy as the evaluator compiles it (a model row, a file item or a draft).

    `rules` are already validated (apps.policies.validation). Project and key names in the
    scope and in subject conditions may list slugs, names and ids side by side.
    """

    name: str
    rules: tuple[Mapping[str, Any], ...] | list
    id: int = 0
    tenant_id: str | None = None  # None: a global policy
    tenant: str = ""  # the tenant's slug
    priority: int = 0
    mode: str = "enforce"
    enabled: bool = True
    scope: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1


# Facts and Decision are built per request: plain slotted dataclasses, since a frozen
# dataclass's __init__ (object.__setattr__ per field) costs several times as much. Treat
# both as read-only: decisions are shared between requests.
@dataclass(slots=True)
class Facts:
    """What is known of a request before routing."""

    tenant: str = ""
    tenant_id: str = ""
    project: str = ""
    key: str = ""
    end_user: str = ""
    role: str = ""
    groups: frozenset[str] = frozenset()
    endpoint: str = "chat"
    classification: str = "internal"
    entities: frozenset[str] = frozenset()
    tokens: int = 0
    cost_usd: float = 0.0
    hour: int = 0
    weekday: int = 0
    model: str = ""
    hints: Mapping[str, Any] = NO_HINTS


@dataclass(frozen=True, slots=True)
class Match:
    """One rule that matched: which policy, which rule, its effect and why."""

    policy: str
    policy_id: int
    rule: str
    effect: str
    log_only: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_id": self.policy_id,
            "rule": self.rule,
            "effect": self.effect,
            "log_only": self.log_only,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class _RouteRule:
    match: Match
    regions: tuple[str, ...] | None
    local_only: bool
    exclude: frozenset[str]


@dataclass(frozen=True, slots=True)
class _ResourceRule:
    match: Match
    test: Callable[[Any], bool]


@dataclass(slots=True, eq=False)
class Decision:
    """What the policies in scope decided for one request (see the module docstring)."""

    denied: Match | None = None
    redact: Mapping[str, str] = NO_HINTS
    regions: tuple[str, ...] | None = None
    local_only: bool = False
    exclude_providers: frozenset[str] = frozenset()
    max_cost_usd: float | None = None
    max_cost_policy: str = ""  # the policy whose cap is max_cost_usd
    retention_days: int | None = None
    injection: tuple[float, str] | None = None
    egress: tuple[frozenset[str], str] | None = None
    matched: tuple[Match, ...] = ()
    logged: tuple[Match, ...] = ()
    routes: tuple[_RouteRule, ...] = ()
    resource_rules: tuple[_ResourceRule, ...] = ()

    @property
    def has_resource_rules(self) -> bool:
        return bool(self.resource_rules)

    @property
    def outcome(self) -> str:
        """A one-word summary: denied, constrained (anything but a plain allow), allowed."""
        if self.denied is not None:
            return "denied"
        if (
            self.redact
            or self.routes
            or self.resource_rules
            or self.max_cost_usd is not None
            or self.retention_days is not None
            or self.injection is not None
            or self.egress is not None
        ):
            return "constrained"
        return "allowed"

    def deployment_reason(self, dep: Any) -> str | None:
        """Why the policies keep this request away from `dep` (naming the policy), or
        None. The routing engine groups deployments by this text, so it does not name
        the deployment."""
        for route in self.routes:
            label = f"policy '{route.match.policy}'"
            if route.local_only and not is_local(dep):
                return f"{label} allows local models only"
            if route.exclude and dep.provider_name in route.exclude:
                return f"{label} excludes provider {dep.provider_name}"
            if route.regions is not None and not region_matches(dep.region, route.regions):
                allowed = ", ".join(route.regions) or "(none)"
                return f"{label} allows regions {allowed} only"
        for rule in self.resource_rules:
            if rule.test(dep):
                return f"policy '{rule.match.policy}' rule '{rule.match.rule}': {rule.match.why}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary for the request log, the audit event and simulations. A
        denial names its policy under `name` and its message under `reason` (what the
        compliance report groups denials by)."""
        out: dict[str, Any] = {"outcome": self.outcome}
        if self.denied is not None:
            out["name"] = self.denied.policy
            out["id"] = self.denied.policy_id
            out["reason"] = self.denied.why or self.denied.policy
            out["denied"] = self.denied.to_dict()
        if self.redact:
            out["redact"] = dict(sorted(self.redact.items()))
        if self.regions is not None:
            out["regions"] = list(self.regions)
        if self.local_only:
            out["local_only"] = True
        if self.exclude_providers:
            out["exclude_providers"] = sorted(self.exclude_providers)
        if self.max_cost_usd is not None:
            out["max_cost_usd"] = self.max_cost_usd
        if self.retention_days is not None:
            out["retention_days"] = self.retention_days
        if self.injection is not None:
            out["injection"] = {"threshold": self.injection[0], "action": self.injection[1]}
        if self.egress is not None:
            out["egress"] = {"entities": sorted(self.egress[0]), "mode": self.egress[1]}
        if self.resource_rules:
            out["deployment_rules"] = [r.match.to_dict() for r in self.resource_rules]
        out["matched"] = [m.to_dict() for m in self.matched]
        if self.logged:
            out["logged"] = [m.to_dict() for m in self.logged]
        return out


ALLOW = Decision()


# --- compiling conditions ----------------------------------------------------------------

# How each attribute is read: from the request's Facts (`f`) or a deployment (`d`).
_READ = {
    "subject.tenant": "f.tenant",
    "subject.project": "f.project",
    "subject.key": "f.key",
    "subject.end_user": "f.end_user",
    "subject.role": "f.role",
    "subject.groups": "f.groups",
    "request.endpoint": "f.endpoint",
    "request.classification": "f.classification",
    "request.entities": "f.entities",
    "request.tokens": "f.tokens",
    "request.cost_usd": "f.cost_usd",
    "request.hour": "f.hour",
    "request.weekday": "f.weekday",
    "request.model": "f.model",
    "resource.model": "d.public_name",
    "resource.provider": "d.provider_name",
    "resource.region": "d.region",
    "resource.capabilities": "d.capabilities",
    "resource.local": "_local(d)",
    "resource.input_price": "float(d.prices.input)",
    "resource.output_price": "float(d.prices.output)",
}
_ORDERED = frozenset({"gt", "gte", "lt", "lte", "between"})


def _hint_test(op: str, value: Any) -> Callable[[Any], bool]:
    """A hint's test: hints are whatever the caller sent, so a value of the wrong type
    simply does not match."""
    if op == "exists":
        return (lambda v: v is not None) if value else (lambda v: v is None)
    if op == "matches":
        pattern = re.compile(value)
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op in ("in", "not_in"):
        values = tuple(value)
        inside = (lambda v: v in values) if op == "in" else (lambda v: v not in values)

        def member(v: Any) -> bool:
            try:
                return inside(v)
            except TypeError:
                return op == "not_in"

        return member
    compare: Callable[[Any], bool] = {
        "eq": lambda v: v == value,
        "ne": lambda v: v != value,
        "gt": lambda v: v > value,
        "gte": lambda v: v >= value,
        "lt": lambda v: v < value,
        "lte": lambda v: v <= value,
        "between": lambda v: value[0] <= v <= value[1],
    }[op]

    def safe(v: Any) -> bool:
        if op in _ORDERED and (isinstance(v, bool) or not isinstance(v, int | float)):
            return False
        try:
            return bool(compare(v))
        except TypeError:
            return op == "ne"

    return safe


class _Names:
    """Constants bound to names in generated code (values are never spliced into it)."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"_local": is_local, "_rank": CLASSIFICATION_RANK}

    def bind(self, value: Any) -> str:
        name = f"_c{len(self.env)}"
        self.env[name] = value
        return name


def condition_expr(cond: Mapping[str, Any], names: _Names, x: str | None = None) -> str:
    """A Python expression testing one (validated) condition. `x`, when given, is the
    expression of the attribute's value; otherwise it is read from `f` or `d`."""
    attr, op, value = cond["attr"], cond["op"], cond.get("value")
    kind = attribute_type(attr)
    if kind == "any":
        name = attr[len(HINT_PREFIX) :]
        read = x or f"f.hints.get({names.bind(name)})"
        # Comparing for equality or membership never raises: those are tested inline.
        if op == "exists":
            return f"({read} is {'not ' if value else ''}None)"
        if op in ("eq", "ne"):
            return f"({read} {'==' if op == 'eq' else '!='} {names.bind(value)})"
        if op in ("in", "not_in"):
            return f"({read} {'in' if op == 'in' else 'not in'} {names.bind(tuple(value))})"
        return f"{names.bind(_hint_test(op, value))}({read})"
    read = x or _READ[attr]
    if kind == "class" and op in _ORDERED:
        # An unknown classification satisfies no ordered test.
        read = f"_rank.get({read}, {99 if op in ('lt', 'lte') else -1})"
        value = (
            [CLASSIFICATION_RANK[v] for v in value]
            if isinstance(value, list)
            else CLASSIFICATION_RANK[value]
        )
    if op == "exists":
        return f"bool({read})" if value else f"(not {read})"
    if op in ("eq", "ne"):
        return f"({read} {'==' if op == 'eq' else '!='} {names.bind(value)})"
    if op in ("in", "not_in"):
        members = frozenset(value)
        if kind == "str" and attr in ("resource.region", "resource.provider"):
            members = frozenset(str(v).lower() for v in value)
            read = f"{read}.lower()"
        return f"({read} {'in' if op == 'in' else 'not in'} {names.bind(members)})"
    if op == "contains":
        if isinstance(value, list):
            return f"({names.bind(frozenset(value))} <= {read})"
        return f"({names.bind(value)} in {read})"
    if op == "contains_any":
        return f"(not {names.bind(frozenset(value))}.isdisjoint({read}))"
    if op in ("gt", "gte", "lt", "lte"):
        symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({read} {symbol} {names.bind(value)})"
    if op == "between":
        low, high = names.bind(value[0]), names.bind(value[1])
        if attr in CYCLIC and value[0] > value[1]:
            return f"({read} >= {low} or {read} <= {high})"
        return f"({low} <= {read} <= {high})"
    if op == "matches":
        return f"({names.bind(re.compile(value))}.search({read}) is not None)"
    raise ValueError(f"unknown operator {op!r}")


def _function(exprs: list[str], arg: str, names: _Names) -> Callable[[Any], bool] | None:
    """One function testing every expression (short-circuiting), or None for none."""
    if not exprs:
        return None
    source = f"lambda {arg}: " + " and ".join(exprs)
    return eval(source, names.env)  # noqa: S307 - source built from the registry only


def value_test(cond: Mapping[str, Any]) -> Callable[[Any], bool]:
    """The condition as a test of one attribute value (for validation's reasoning)."""
    names = _Names()
    return eval("lambda x: " + condition_expr(cond, names, x="x"), names.env)  # noqa: S307


def describe(cond: Mapping[str, Any]) -> str:
    value = cond.get("value")
    if isinstance(value, list):
        value = "[" + ", ".join(str(v) for v in value) + "]"
    if cond["op"] == "exists":
        return f"{cond['attr']} {'exists' if value else 'is absent'}"
    return f"{cond['attr']} {cond['op']} {value}"


# --- compiling policies ------------------------------------------------------------------
#
# Each owner's policies (the global ones, each tenant's) compile into one generated function
# that reads the request's attributes into locals once, then tests every rule inline, in
# walk order, appending the numbers of the rules that match. Rule numbers follow the walk
# order across owners, so a request's global and tenant hits merge by sorting. One call
# per owner and no call per rule: on a slow core a Python call costs 0.1 to 0.2 us, and a
# request in scope of 100 policies tests about 200 rules.

_NEVER = -(10**18)


@dataclass(frozen=True, slots=True)
class _Rule:
    match: Match
    kind: int  # _ENFORCED, _LOGGED or _ARMED
    resource: Callable[[Any], bool] | None  # a deny over resource attributes
    effect: Mapping[str, Any]
    code: int = 0  # the effect, as an index of EFFECTS
    data: Any = None  # the effect's figures, parsed once (see _effect_data)


_ENFORCED, _LOGGED, _ARMED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Policy:
    spec: PolicySpec
    owner: str  # the tenant id, or "" for a global policy
    order: tuple


# Local variable names of the request attributes a walk function reads.
_LOCALS = {read: "v_" + read[2:] for read in _READ.values() if read.startswith("f.")}


def _request_expr(cond: Mapping[str, Any], names: _Names) -> str:
    attr = cond["attr"]
    if attr.startswith(HINT_PREFIX):
        return condition_expr(cond, names, x=f"v_hints.get({names.bind(attr[len(HINT_PREFIX) :])})")
    return condition_expr(cond, names, x=_LOCALS[_READ[attr]])


def _scope_exprs(scope: Mapping[str, Any], names: _Names) -> list[str]:
    exprs = []
    for dimension, local in (
        ("projects", "v_project"),
        ("keys", "v_key"),
        ("classifications", "v_classification"),
    ):
        values = scope.get(dimension) or ()
        if values:
            exprs.append(f"({local} in {names.bind(frozenset(str(v) for v in values))})")
    groups = scope.get("groups") or ()
    if groups:
        exprs.append(f"(not {names.bind(frozenset(groups))}.isdisjoint(v_groups))")
    return exprs


def _rule_of(spec: PolicySpec, index: int, rule: Mapping[str, Any], names: _Names) -> _Rule:
    effect = dict(rule.get("effect") or {"type": "allow"})
    when = list(rule.get("when") or ())
    resource = [c for c in when if is_resource(c["attr"])]
    why = effect.get("message") if effect["type"] == "deny" else ""
    log_only = spec.mode == "log_only"
    match = Match(
        policy=spec.name,
        policy_id=spec.id,
        rule=str(rule.get("id") or f"rule-{index + 1}"),
        effect=effect["type"],
        log_only=log_only,
        why=why or " and ".join(describe(c) for c in when) or "always",
    )
    return _Rule(
        match=match,
        kind=_LOGGED if log_only else (_ARMED if resource else _ENFORCED),
        resource=_function([condition_expr(c, names) for c in resource], "d", names),
        effect=effect,
        code=EFFECTS.index(effect["type"]),
        data=_effect_data(match, effect),
    )


def _effect_data(match: Match, effect: Mapping[str, Any]) -> Any:
    kind = effect["type"]
    if kind == "redact":
        mode = effect["mode"]
        return tuple((entity, REDACT_STRENGTH[mode], mode) for entity in effect["entities"])
    if kind == "route":
        regions = effect.get("regions")
        return _RouteRule(
            match,
            None if regions is None else tuple(r.lower() for r in regions),
            bool(effect.get("local_only")),
            frozenset(effect.get("exclude_providers") or ()),
        )
    if kind == "cap_cost":
        return float(effect["max_usd"])
    if kind == "retention":
        return int(effect["days"])
    if kind == "guard":
        injection = effect.get("injection")
        egress = effect.get("egress")
        return (
            (float(injection["threshold"]), injection["action"]) if injection else None,
            (frozenset(egress["entities"]), egress["mode"]) if egress else None,
        )
    return None


def _partial(cond: Mapping[str, Any], fixed: Mapping[str, Any]) -> bool | None:
    """A condition's outcome when its attribute is fixed for this walk, else None."""
    attr = cond["attr"]
    if attr not in fixed:
        return None
    return _fixed_outcome(attr, cond["op"], repr(cond.get("value")), fixed[attr])


@functools.lru_cache(maxsize=8192)
def _fixed_outcome(attr: str, op: str, value: str, fixed: Any) -> bool:
    cond = {"attr": attr, "op": op, "value": ast.literal_eval(value)}
    return bool(value_test(cond)(fixed))


def _walk_function(
    policies: list[_Policy],
    numbers: Mapping[tuple[int, int], int],
    fixed: Mapping[str, Any],
) -> Callable[[Facts], list[int]]:
    """One owner's policies as one function: facts -> numbers of the matching rules.

    `fixed` holds attribute values this function is specialised for (the request's
    classification and endpoint): conditions on them are decided here, once, so a rule
    that cannot match such requests is left out and a condition that always holds is not
    tested."""
    names = _Names()
    body: list[str] = []
    stops = False
    fixed_class = fixed.get("request.classification")
    # A condition several rules share is tested once, up front, when it is cheap.
    exprs: dict[tuple, str] = {}
    counts: dict[tuple, int] = {}

    def key_of(cond: Mapping[str, Any]) -> tuple:
        key = (cond["attr"], cond["op"], repr(cond.get("value")))
        if key not in exprs:
            exprs[key] = _request_expr(cond, names)
            counts[key] = 0
        return key

    plans = []
    for p_index, policy in enumerate(policies):
        spec = policy.spec
        scope = dict(spec.scope or {})
        if fixed_class is not None and scope.get("classifications"):
            if fixed_class not in scope["classifications"]:
                continue
            scope.pop("classifications")
        rules = []
        for r_index, rule in enumerate(spec.rules):
            when = rule.get("when") or ()
            outcomes = [_partial(c, fixed) for c in when]
            if False in outcomes:
                continue
            tests = [
                c
                for c, known in zip(when, outcomes, strict=True)
                if known is None and not is_resource(c["attr"])
            ]
            keys = [key_of(c) for c in sorted(tests, key=_cost)]
            for key in set(keys):
                counts[key] += 1
            rules.append((r_index, rule, keys))
        plans.append((p_index, policy, scope, rules))
    hoisted: dict[tuple, str] = {}
    for key, n in counts.items():
        if n > 1 and _cost({"attr": key[0], "op": key[1]}) == 0:
            hoisted[key] = f"b{len(hoisted)}"
    for p_index, policy, scope, rules in plans:
        spec = policy.spec
        enforced = spec.mode != "log_only"
        guard = _scope_exprs(scope, names)
        if stops and enforced:
            guard.insert(0, f"{int(spec.priority)} >= stop")
        lines = []
        for r_index, rule, keys in rules:
            number = numbers[(p_index, r_index)]
            tests = [hoisted[k] for k in keys if k in hoisted]
            tests += [exprs[k] for k in keys if k not in hoisted]
            when = rule.get("when") or ()
            is_allow = (rule.get("effect") or {}).get("type") == "allow"
            is_plain = not any(is_resource(c["attr"]) for c in when)
            action = f"add({number})"
            if enforced and is_allow and is_plain:
                action += f"; stop = {int(spec.priority)} if stop == {_NEVER} else stop"
                stops = True
            lines.append(f"if {' and '.join(tests)}: {action}" if tests else action)
        if not lines:
            continue
        if guard:
            body.append(f"if {' and '.join(guard)}:")
            body.extend("    " + line for line in lines)
        else:
            body.extend(lines)
    body[:0] = [f"{local} = {exprs[key]}" for key, local in hoisted.items()]
    source = "\n".join(body)
    used = {
        f"{local} = {read}" for read, local in _LOCALS.items() if re.search(rf"\b{local}\b", source)
    }
    if "v_hints" in source:
        used.add("v_hints = f.hints")
    # Constants as default arguments: read as fast locals, not globals.
    constants = "".join(f", {name}={name}" for name in names.env if name.startswith("_"))
    head = [
        f"def walk(f{constants}):",
        *sorted("    " + u for u in used),
        "    hits = []",
        "    add = hits.append",
    ]
    if stops:
        head.append(f"    stop = {_NEVER}")
    code = "\n".join([*head, *("    " + line for line in body), "    return hits"])
    exec(compile(code, "<policies>", "exec"), names.env)  # noqa: S102 - built from the registry
    return names.env["walk"]


def _cost(cond: Mapping[str, Any]) -> int:
    """Cheap tests first (conditions are pure, so their order changes no outcome)."""
    if cond["attr"].startswith(HINT_PREFIX) or cond["op"] == "matches":
        return 2
    return 1 if cond["op"] == "contains_any" else 0


_ENDPOINT_SET = frozenset(ENDPOINTS)
# Distinct decisions kept per evaluator (a decision depends only on the rules that hit).
DECISION_CACHE = 4096


class Evaluator:
    """The compiled policies: walk functions for the global ones and for each tenant's,
    specialised by classification and endpoint on first use, and the decisions of the
    rule combinations seen so far."""

    __slots__ = ("_owners", "_slugs", "_rules", "_names", "_walks", "_decisions", "_count")

    def __init__(self, specs: Iterable[PolicySpec] = ()) -> None:
        self._names = names = _Names()
        ordered = sorted(
            (
                _Policy(
                    spec=spec,
                    owner=spec.tenant_id or "",
                    # Higher priority first; a tenant's before a global one; name, id.
                    order=(-int(spec.priority), 0 if spec.tenant_id else 1, spec.name, spec.id),
                )
                for spec in specs
            ),
            key=lambda p: p.order,
        )
        self._count = len(ordered)
        self._rules: list[_Rule] = []
        owners: dict[str, tuple[list[_Policy], dict[tuple[int, int], int]]] = {}
        for policy in ordered:
            group, numbers = owners.setdefault(policy.owner, ([], {}))
            for r_index, rule in enumerate(policy.spec.rules):
                numbers[(len(group), r_index)] = len(self._rules)
                self._rules.append(_rule_of(policy.spec, r_index, rule, names))
            group.append(policy)
        self._owners = owners
        self._slugs: dict[str, str] = {}
        self._walks: dict[tuple[str, str, str], Callable[[Facts], list[int]]] = {}
        self._decisions: dict[tuple[int, ...], Decision] = {}

    def __len__(self) -> int:
        return self._count

    def alias(self, slug: str, tenant_id: str) -> None:
        """Let requests naming the tenant by slug only find its policies too."""
        if tenant_id in self._owners:
            self._slugs[slug] = tenant_id

    def policies_for(self, facts: Facts) -> tuple[PolicySpec, ...]:
        """The policies a request of this tenant is evaluated against, in walk order."""
        owner = self._owner(facts)
        found = list(self._owners.get("", ([], {}))[0])
        if owner:
            found = sorted([*found, *self._owners[owner][0]], key=lambda p: p.order)
        return tuple(p.spec for p in found)

    def _owner(self, facts: Facts) -> str:
        if facts.tenant_id in self._owners:
            return facts.tenant_id
        return self._slugs.get(facts.tenant, "")

    def _walk(self, owner: str, classification: str, endpoint: str) -> Callable:
        fixed: dict[str, Any] = {}
        if classification:
            fixed["request.classification"] = classification
        if endpoint:
            fixed["request.endpoint"] = endpoint
        group, numbers = self._owners[owner]
        walk = _walk_function(group, numbers, fixed)
        self._walks[(owner, classification, endpoint)] = walk
        return walk

    def warm(self, owners: Iterable[str] | None = None) -> None:
        """Compile the walks of `owners` (tenant ids, "" for the global policies; default
        all) for every classification and endpoint now rather than on first use."""
        for owner in self._owners if owners is None else owners:
            for classification in (*CLASSIFICATIONS, ""):
                for endpoint in (*ENDPOINTS, ""):
                    if (owner, classification, endpoint) not in self._walks:
                        self._walk(owner, classification, endpoint)

    def evaluate(self, facts: Facts) -> Decision:
        owners = self._owners
        if not owners:
            return ALLOW
        owner = facts.tenant_id
        if owner not in owners:
            owner = self._slugs.get(facts.tenant, "") if self._slugs else ""
        # Values outside the vocabulary get the unspecialised walk ("" fixes nothing).
        classification = facts.classification
        if classification not in CLASSIFICATION_RANK:
            classification = ""
        endpoint = facts.endpoint
        if endpoint not in _ENDPOINT_SET:
            endpoint = ""
        walks = self._walks
        hits = None
        if "" in owners:
            walk = walks.get(("", classification, endpoint)) or self._walk(
                "", classification, endpoint
            )
            hits = walk(facts)
        if owner:
            walk = walks.get((owner, classification, endpoint)) or self._walk(
                owner, classification, endpoint
            )
            mine = walk(facts)
            if mine:
                hits = sorted(hits + mine) if hits else mine
        if not hits:
            return ALLOW
        key = tuple(hits)
        decision = self._decisions.get(key)
        if decision is None:
            rules = self._rules
            decision = _decide([rules[n] for n in hits])
            if len(self._decisions) >= DECISION_CACHE:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision


_INTERSECTIONS: dict[tuple, tuple[str, ...]] = {}


def _intersect(current: tuple[str, ...] | None, regions: tuple[str, ...]) -> tuple[str, ...]:
    """Regions inside both lists (a region or region prefix such as `eu` on either side)."""
    if current is None:
        return regions
    key = (current, regions)
    known = _INTERSECTIONS.get(key)
    if known is None:
        if len(_INTERSECTIONS) > 4096:
            _INTERSECTIONS.clear()
        known = _INTERSECTIONS[key] = _intersect_now(current, regions)
    return known


def _intersect_now(current: tuple[str, ...], regions: tuple[str, ...]) -> tuple[str, ...]:
    kept = [r for r in current if region_matches(r, regions)]
    kept += [r for r in regions if region_matches(r, current) and r not in kept]
    return tuple(kept)


_DENY, _REDACT, _ROUTE, _CAP, _RETENTION, _GUARD = (
    EFFECTS.index(e) for e in ("deny", "redact", "route", "cap_cost", "retention", "guard")
)


def _decide(hits: list[_Rule]) -> Decision:
    denied: Match | None = None
    redact: dict[str, str] = {}
    strength: dict[str, int] = {}
    regions: tuple[str, ...] | None = None
    local_only = False
    exclude: frozenset[str] = frozenset()
    max_cost: float | None = None
    max_cost_policy = ""
    retention: int | None = None
    injection: tuple[float, str] | None = None
    egress_types: frozenset[str] = frozenset()
    egress_mode: str | None = None
    routes: list[_RouteRule] = []
    matched: list[Match] = []
    logged: list[Match] = []
    armed: list[_ResourceRule] = []
    for rule in hits:
        kind = rule.kind
        if kind == _LOGGED:
            logged.append(rule.match)
            continue
        if kind == _ARMED:
            armed.append(_ResourceRule(rule.match, rule.resource))
            continue
        matched.append(rule.match)
        code = rule.code
        data = rule.data
        if code == _DENY:
            if denied is None:
                denied = rule.match
        elif code == _REDACT:
            for entity, level, mode in data:
                if level > strength.get(entity, -1):
                    strength[entity] = level
                    redact[entity] = mode
        elif code == _ROUTE:
            routes.append(data)
            if data.regions is not None:
                regions = _intersect(regions, data.regions)
            local_only = local_only or data.local_only
            if data.exclude:
                exclude = exclude | data.exclude
        elif code == _CAP:
            if max_cost is None or data < max_cost:
                max_cost, max_cost_policy = data, rule.match.policy
        elif code == _RETENTION:
            retention = data if retention is None or data < retention else retention
        elif code == _GUARD:
            pair, out = data
            if pair is not None and (
                injection is None
                or GUARD_STRENGTH[pair[1]] > GUARD_STRENGTH[injection[1]]
                or (pair[1] == injection[1] and pair[0] < injection[0])
            ):
                injection = pair
            if out is not None:
                egress_types = egress_types | out[0]
                if egress_mode is None or out[1] == "block":
                    egress_mode = out[1]
    star = strength.get("*")
    if star is not None:
        for entity, level in strength.items():
            if star > level:
                redact[entity] = redact["*"]
    return Decision(
        denied=denied,
        redact=_ReadOnlyDict(redact) if redact else NO_HINTS,
        regions=regions,
        local_only=local_only,
        exclude_providers=exclude,
        max_cost_usd=max_cost,
        max_cost_policy=max_cost_policy,
        retention_days=retention,
        injection=injection,
        egress=(egress_types, egress_mode) if egress_mode else None,
        matched=tuple(matched),
        logged=tuple(logged),
        routes=tuple(routes),
        resource_rules=tuple(armed),
    )


EMPTY = Evaluator()


def compile_policies(policies: Iterable[PolicySpec]) -> Evaluator:
    """The enabled policies among `policies`, compiled (specs already validated)."""
    enabled = [p for p in policies if p.enabled]
    if not enabled:
        return EMPTY
    evaluator = Evaluator(enabled)
    for spec in enabled:
        if spec.tenant_id and spec.tenant:
            evaluator.alias(spec.tenant, spec.tenant_id)
    return evaluator


def load_evaluator() -> Evaluator:
    """The enabled policies of the database, compiled (the snapshot build; a cold path).

    Projects and keys named by slug or key name, in scopes and subject conditions, are
    compiled as their ids too, since requests carry ids.
    """
    from apps.policies.selectors import policy_specs

    return compile_policies(policy_specs(enabled_only=True))
