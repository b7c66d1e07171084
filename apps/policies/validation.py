"""Checks of a policy before it is saved, simulated or previewed.

`validate_policy(draft)` returns every problem it finds, each as
{"path", "code", "message", "severity"}: the path points into the draft
(`rules[0].when[1].op`). Errors (unknown attributes, operators an attribute does not take,
bad values, contradictory rules that can never match) keep a policy from being saved;
warnings (unreachable rules, shadowed by an unconditional deny or allow evaluated before
them) are reported and do not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from apps.policies import engine
from apps.policies.detection import ENTITY_TYPES
from apps.policies.engine import (
    ATTRIBUTES,
    CLASSIFICATIONS,
    CYCLIC,
    EFFECTS,
    EGRESS_MODES,
    ENDPOINTS,
    GUARD_ACTIONS,
    HINT_PREFIX,
    MAX_PATTERN,
    MODES,
    OPERATORS,
    REDACT_MODES,
    PolicySpec,
    attribute_type,
    is_resource,
)

Problem = dict[str, str]

SCOPE_KEYS = ("projects", "keys", "groups", "classifications")
RULE_KEYS = {"id", "description", "when", "effect"}
CONDITION_KEYS = {"attr", "op", "value"}
MAX_RULES = 100
MAX_CONDITIONS = 20
MAX_VALUES = 1000
MAX_TEXT = 500
MAX_PRIORITY = 1_000_000
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
# Values an attribute may take, when it has a closed set of them.
DOMAINS: Mapping[str, tuple] = {
    "request.classification": CLASSIFICATIONS,
    "request.endpoint": ENDPOINTS,
    "request.hour": tuple(range(24)),
    "request.weekday": tuple(range(7)),
    "resource.local": (True, False),
}
# Members of set attributes, when closed.
MEMBERS: Mapping[str, tuple] = {"request.entities": ENTITY_TYPES}
NON_NEGATIVE = frozenset(
    {"request.tokens", "request.cost_usd", "resource.input_price", "resource.output_price"}
)


class _Report:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, path: str, code: str, message: str) -> None:
        self.problems.append({"path": path, "code": code, "message": message, "severity": "error"})

    def warning(self, path: str, code: str, message: str) -> None:
        self.problems.append(
            {"path": path, "code": code, "message": message, "severity": "warning"}
        )


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p["severity"] == "error" for p in problems)


def errors_by_field(problems: Iterable[Problem]) -> dict[str, list[str]]:
    """Errors as a Django ValidationError's dict: by top-level field, each message
    prefixed with its path inside the field."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        if problem["severity"] != "error":
            continue
        path = problem["path"]
        head = re.split(r"[.\[]", path, maxsplit=1)[0] or "rules"
        inner = path[len(head) :].lstrip(".")
        message = f"{inner}: {problem['message']}" if inner else problem["message"]
        out.setdefault(head, []).append(message)
    return out


# --- values ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar_ok(attr: str, kind: str, value: Any) -> str | None:
    """Why `value` is not a value `attr` can take, or None."""
    if kind == "any":
        if value is None or isinstance(value, list | dict):
            return "a hint is compared with a string, number or boolean"
        return None
    if kind in ("str", "class"):
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > MAX_TEXT:
            return f"must be at most {MAX_TEXT} characters"
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
    elif kind == "float":
        if not _is_number(value):
            return "must be a number"
    elif kind == "bool" and not isinstance(value, bool):
        return "must be true or false"
    domain = DOMAINS.get(attr)
    if domain is not None and value not in domain:
        shown = ", ".join(str(v) for v in domain) if len(domain) <= 8 else "its range"
        return f"{value!r} is not a value of {attr} (expected {shown})"
    if attr in NON_NEGATIVE and value < 0:
        return "must be >= 0"
    return None


def _member_ok(attr: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    members = MEMBERS.get(attr)
    if members is not None and value not in members:
        return f"{value!r} is not one of {', '.join(members)}"
    return None


def _check_value(report: _Report, path: str, attr: str, kind: str, op: str, value: Any) -> bool:
    """Report what is wrong with a condition's value; True when it is usable."""
    before = len(report.problems)

    def bad(message: str, code: str = "bad_value") -> None:
        report.error(path, code, message)

    if op == "exists":
        if not isinstance(value, bool):
            bad("exists takes true or false")
    elif op in ("eq", "ne"):
        if (why := _scalar_ok(attr, kind, value)) is not None:
            bad(why)
    elif op in ("in", "not_in"):
        if not isinstance(value, list):
            bad(f"{op} takes a list")
        elif len(value) > MAX_VALUES:
            bad(f"at most {MAX_VALUES} values")
        else:
            for i, item in enumerate(value):
                if (why := _scalar_ok(attr, kind, item)) is not None:
                    report.error(f"{path}[{i}]", "bad_value", why)
    elif op in ("contains", "contains_any"):
        items = value if isinstance(value, list) else [value]
        if op == "contains_any" and not isinstance(value, list):
            bad("contains_any takes a list")
        elif len(items) > MAX_VALUES:
            bad(f"at most {MAX_VALUES} values")
        else:
            for i, item in enumerate(items):
                if (why := _member_ok(attr, item)) is not None:
                    report.error(
                        f"{path}[{i}]" if isinstance(value, list) else path, "bad_value", why
                    )
    elif op in ("gt", "gte", "lt", "lte"):
        if kind == "class":
            if value not in CLASSIFICATIONS:
                bad(f"must be one of {', '.join(CLASSIFICATIONS)}")
        elif not _is_number(value):
            bad(f"{op} takes a number")
    elif op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            bad("between takes [low, high]")
        elif kind == "class":
            if not all(v in CLASSIFICATIONS for v in value):
                bad(f"bounds must be among {', '.join(CLASSIFICATIONS)}")
            elif CLASSIFICATIONS.index(value[0]) > CLASSIFICATIONS.index(value[1]):
                bad("the low bound is above the high one", "contradiction")
        elif not all(_is_number(v) for v in value):
            bad("between takes two numbers")
        elif any(_scalar_ok(attr, kind, v) for v in value):
            bad(next(w for v in value if (w := _scalar_ok(attr, kind, v))))
        elif value[0] > value[1] and attr not in CYCLIC:
            bad("the low bound is above the high one", "contradiction")
    elif op == "matches":
        if not isinstance(value, str) or not value:
            bad("matches takes a regular expression")
        elif len(value) > MAX_PATTERN:
            bad(f"a pattern is at most {MAX_PATTERN} characters")
        else:
            try:
                re.compile(value)
            except re.error as exc:
                bad(f"not a valid regular expression: {exc}")
    return len(report.problems) == before


# --- contradictions ----------------------------------------------------------------------


def _numeric_candidates(conds: list[Mapping[str, Any]], attr: str) -> list[float]:
    points: set[float] = {0.0, 1e18}
    for cond in conds:
        value = cond.get("value")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if _is_number(v):
                step = max(abs(v), 1.0) * 1e-9
                points.update({v, v - 1, v + 1, v - step, v + step})
    ordered = sorted(points)
    points.update((a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False))
    if attr in NON_NEGATIVE:
        points = {p for p in points if p >= 0}
    if ATTRIBUTES.get(attr) == "int":
        points = {float(int(p)) for p in points} | {float(int(p) + 1) for p in points}
        return [int(p) for p in sorted(points)]
    return sorted(points)


def _candidates(attr: str, conds: list[Mapping[str, Any]]) -> list[Any] | None:
    """Values that satisfy the conditions on `attr` if any value does; None: unknown."""
    kind = attribute_type(attr)
    if attr in DOMAINS:
        return list(DOMAINS[attr])
    if kind == "set":
        mentioned: set[str] = set()
        for cond in conds:
            value = cond.get("value")
            if cond["op"] in ("contains", "contains_any"):
                mentioned.update(value if isinstance(value, list) else [value])
        return [frozenset(), frozenset(mentioned)]
    if kind in ("int", "float"):
        return _numeric_candidates(conds, attr)
    if kind == "str":
        named = [
            v
            for cond in conds
            if cond["op"] in ("eq", "in")
            for v in (cond["value"] if isinstance(cond["value"], list) else [cond["value"]])
        ]
        return named if any(c["op"] in ("eq", "in") for c in conds) else None
    return None


def _satisfiable(attr: str, conds: list[Mapping[str, Any]]) -> bool:
    if any(c["op"] in ("in", "contains_any") and c.get("value") == [] for c in conds):
        return False
    candidates = _candidates(attr, conds)
    if candidates is None:
        return True
    tests = [engine.value_test(c) for c in conds]
    for value in candidates:
        try:
            if all(test(value) for test in tests):
                return True
        except (TypeError, AttributeError):
            return True  # a value of another type: no opinion
    return False


# --- rules and effects -------------------------------------------------------------------


def _string_list(report: _Report, path: str, value: Any, allowed: Iterable[str] | None) -> bool:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        report.error(path, "bad_value", "must be a list of non-empty strings")
        return False
    if len(value) > MAX_VALUES:
        report.error(path, "bad_value", f"at most {MAX_VALUES} values")
        return False
    if allowed is not None:
        known = set(allowed)
        for i, v in enumerate(value):
            if v not in known:
                report.error(f"{path}[{i}]", "bad_value", f"{v!r} is not one of {', '.join(known)}")
                return False
    return True


def _keys(report: _Report, path: str, value: Mapping, allowed: set[str]) -> None:
    for key in value:
        if key not in allowed:
            report.error(
                f"{path}.{key}",
                "unknown_key",
                f"unknown key (expected {', '.join(sorted(allowed))})",
            )


def _check_effect(report: _Report, path: str, effect: Any) -> str | None:
    if not isinstance(effect, Mapping):
        report.error(path, "bad_effect", "must be an object with a `type`")
        return None
    kind = effect.get("type")
    if kind not in EFFECTS:
        report.error(f"{path}.type", "unknown_effect", f"must be one of {', '.join(EFFECTS)}")
        return None
    if kind == "allow":
        _keys(report, path, effect, {"type"})
    elif kind == "deny":
        _keys(report, path, effect, {"type", "message"})
        message = effect.get("message", "")
        if not isinstance(message, str) or len(message) > MAX_TEXT:
            report.error(f"{path}.message", "bad_value", f"a text of at most {MAX_TEXT} characters")
    elif kind == "redact":
        _keys(report, path, effect, {"type", "entities", "mode"})
        entities = effect.get("entities")
        if (
            entities != ["*"]
            and _string_list(report, f"{path}.entities", entities, ENTITY_TYPES)
            and not entities
        ):
            report.error(f"{path}.entities", "bad_value", "name at least one entity type")
        if effect.get("mode") not in REDACT_MODES:
            report.error(f"{path}.mode", "bad_value", f"must be one of {', '.join(REDACT_MODES)}")
    elif kind == "route":
        _keys(report, path, effect, {"type", "regions", "local_only", "exclude_providers"})
        if "regions" in effect:
            _string_list(report, f"{path}.regions", effect["regions"], None)
        if "exclude_providers" in effect:
            _string_list(report, f"{path}.exclude_providers", effect["exclude_providers"], None)
        if "local_only" in effect and not isinstance(effect["local_only"], bool):
            report.error(f"{path}.local_only", "bad_value", "must be true or false")
        if not (
            effect.get("regions") is not None
            or effect.get("local_only")
            or effect.get("exclude_providers")
        ):
            report.error(
                path, "bad_effect", "a route effect names regions, local_only or exclude_providers"
            )
    elif kind == "cap_cost":
        _keys(report, path, effect, {"type", "max_usd"})
        cap = effect.get("max_usd")
        if not _is_number(cap) or cap <= 0:
            report.error(f"{path}.max_usd", "bad_value", "must be a number of USD > 0")
    elif kind == "retention":
        _keys(report, path, effect, {"type", "days"})
        days = effect.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 36500:
            report.error(f"{path}.days", "bad_value", "must be a whole number of days, 0 to 36500")
    elif kind == "guard":
        _keys(report, path, effect, {"type", "injection", "egress"})
        injection, egress = effect.get("injection"), effect.get("egress")
        if not injection and not egress:
            report.error(path, "bad_effect", "a guard effect sets `injection`, `egress` or both")
        if injection:
            if not isinstance(injection, Mapping):
                report.error(f"{path}.injection", "bad_value", "must be an object")
            else:
                _keys(report, f"{path}.injection", injection, {"threshold", "action"})
                threshold = injection.get("threshold")
                if not _is_number(threshold) or not 0 <= threshold <= 1:
                    report.error(f"{path}.injection.threshold", "bad_value", "between 0 and 1")
                if injection.get("action") not in GUARD_ACTIONS:
                    report.error(
                        f"{path}.injection.action",
                        "bad_value",
                        f"must be one of {', '.join(GUARD_ACTIONS)}",
                    )
        if egress:
            if not isinstance(egress, Mapping):
                report.error(f"{path}.egress", "bad_value", "must be an object")
            else:
                _keys(report, f"{path}.egress", egress, {"entities", "mode"})
                entities = egress.get("entities")
                if entities != ["*"]:
                    _string_list(report, f"{path}.egress.entities", entities, ENTITY_TYPES)
                if egress.get("mode") not in EGRESS_MODES:
                    report.error(
                        f"{path}.egress.mode",
                        "bad_value",
                        f"must be one of {', '.join(EGRESS_MODES)}",
                    )
    return kind


def _check_rule(report: _Report, path: str, rule: Any, seen: set[str]) -> bool:
    """Report a rule's problems; True when it is well-formed enough to reason about."""
    if not isinstance(rule, Mapping):
        report.error(path, "bad_rule", "must be an object with `when` and `effect`")
        return False
    before = len(report.problems)
    _keys(report, path, rule, RULE_KEYS)
    rule_id = rule.get("id")
    if rule_id is not None:
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            report.error(f"{path}.id", "bad_value", "letters, digits, - _ . (at most 64)")
        elif rule_id in seen:
            report.error(f"{path}.id", "duplicate", f"another rule is also named {rule_id!r}")
        else:
            seen.add(rule_id)
    description = rule.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        report.error(f"{path}.description", "bad_value", f"a text of at most {MAX_TEXT} characters")
    effect = _check_effect(report, f"{path}.effect", rule.get("effect"))
    when = rule.get("when", [])
    if not isinstance(when, list):
        report.error(f"{path}.when", "bad_value", "must be a list of conditions")
        return False
    if len(when) > MAX_CONDITIONS:
        report.error(f"{path}.when", "bad_value", f"at most {MAX_CONDITIONS} conditions")
        return False
    usable: dict[str, list[Mapping[str, Any]]] = {}
    for j, cond in enumerate(when):
        here = f"{path}.when[{j}]"
        if not isinstance(cond, Mapping):
            report.error(here, "bad_condition", "must be an object with attr, op and value")
            continue
        _keys(report, here, cond, CONDITION_KEYS)
        attr, op = cond.get("attr"), cond.get("op")
        kind = attribute_type(attr) if isinstance(attr, str) else None
        if kind is None:
            hint = " (hints are request.hints.<name>)" if str(attr).startswith("request.") else ""
            report.error(f"{here}.attr", "unknown_attribute", f"unknown attribute {attr!r}{hint}")
            continue
        if op not in OPERATORS[kind]:
            report.error(
                f"{here}.op",
                "bad_operator",
                f"{attr} takes {', '.join(sorted(OPERATORS[kind]))}, not {op!r}",
            )
            continue
        value = cond.get("value", True) if op == "exists" else cond.get("value")
        if op != "exists" and "value" not in cond:
            report.error(f"{here}.value", "bad_value", "is required")
            continue
        if not _check_value(report, f"{here}.value", attr, kind, op, value):
            continue
        if is_resource(attr) and effect not in (None, "deny"):
            report.error(
                f"{here}.attr",
                "resource_condition",
                "resource.* conditions choose deployments: only a deny rule (which removes "
                "the deployments they match) may use them",
            )
            continue
        usable.setdefault(attr, []).append({"attr": attr, "op": op, "value": value})
    if len(report.problems) != before:
        return False
    for attr, conds in usable.items():
        if not _satisfiable(attr, conds):
            report.error(
                f"{path}.when",
                "contradiction",
                f"the conditions on {attr} contradict each other: this rule can never match",
            )
            return False
    return True


def _unconditional(rule: Mapping[str, Any]) -> bool:
    return not rule.get("when")


def _covers(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    """Whether every request in `inner`'s scope is in `outer`'s."""
    for key in SCOPE_KEYS:
        wide = outer.get(key) or []
        if wide and not (inner.get(key) and set(inner[key]) <= set(wide)):
            return False
    return True


def _check_reach(
    report: _Report,
    draft: Mapping[str, Any],
    tenant_id: str | None,
    others: Iterable[PolicySpec],
) -> None:
    """Warn about rules no request can reach: after an unconditional deny of the same
    policy, or in a policy shadowed by another's unconditional deny (evaluated at the same
    or a higher priority) or allow (a higher priority, same owner)."""
    rules = draft.get("rules") or []
    for i, rule in enumerate(rules):
        if rule.get("effect", {}).get("type") == "deny" and _unconditional(rule):
            for j in range(i + 1, len(rules)):
                report.warning(
                    f"rules[{j}]",
                    "unreachable",
                    f"every request is already denied by rule {rule.get('id') or i + 1} above",
                )
            break
    if draft.get("mode") == "log_only" or not rules:
        return
    priority = int(draft.get("priority") or 0)
    scope = draft.get("scope") or {}
    for other in others:
        if not other.enabled or other.mode != "enforce":
            continue
        if other.tenant_id and other.tenant_id != tenant_id:
            continue
        if not _covers(other.scope or {}, scope):
            continue
        for rule in other.rules:
            if not _unconditional(rule):
                continue
            kind = rule.get("effect", {}).get("type")
            same_owner = (other.tenant_id or None) == (tenant_id or None)
            if kind == "deny" and other.priority >= priority:
                why = f"policy {other.name!r} denies every request in this scope first"
            elif kind == "allow" and same_owner and other.priority > priority:
                why = (
                    f"policy {other.name!r} allows every request in this scope at a higher priority"
                )
            else:
                continue
            for j in range(len(rules)):
                report.warning(f"rules[{j}]", "unreachable", f"unreachable: {why}")
            return


def validate_policy(
    draft: Mapping[str, Any],
    *,
    tenant_id: str | None = None,
    others: Iterable[PolicySpec] | None = None,
    with_others: bool = True,
) -> list[Problem]:
    """Every problem of `draft` (a dict of name, mode, priority, scope, rules). `others`
    are the policies it would be evaluated with (for unreachable rules); by default the
    enabled ones in the database of its tenant and the global ones."""
    report = _Report()
    if not isinstance(draft, Mapping):
        report.error("", "bad_policy", "a policy is an object")
        return report.problems
    name = draft.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        report.error("name", "bad_value", "letters, digits, - and _ (at most 100)")
    if draft.get("mode", "enforce") not in MODES:
        report.error("mode", "bad_value", f"must be one of {', '.join(MODES)}")
    priority = draft.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        report.error(
            "priority", "bad_value", f"a whole number between -{MAX_PRIORITY} and {MAX_PRIORITY}"
        )
    scope = draft.get("scope") or {}
    if not isinstance(scope, Mapping):
        report.error("scope", "bad_value", "must be an object")
    else:
        _keys(report, "scope", scope, set(SCOPE_KEYS))
        for key in SCOPE_KEYS:
            if key in scope and scope[key] is not None:
                allowed = CLASSIFICATIONS if key == "classifications" else None
                _string_list(report, f"scope.{key}", scope[key], allowed)
    rules = draft.get("rules") or []
    if not isinstance(rules, list):
        report.error("rules", "bad_value", "must be a list of rules")
        return report.problems
    if len(rules) > MAX_RULES:
        report.error("rules", "bad_value", f"at most {MAX_RULES} rules")
        return report.problems
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        _check_rule(report, f"rules[{i}]", rule, seen)
    if has_errors(report.problems):
        return report.problems
    if with_others and others is None:
        from apps.policies.selectors import policy_specs

        others = [
            p
            for p in policy_specs(enabled_only=True)
            if p.id != draft.get("id") and (p.tenant_id is None or p.tenant_id == tenant_id)
        ]
    _check_reach(report, draft, tenant_id, others or ())
    return report.problems


def known_attributes() -> list[str]:
    return [*ATTRIBUTES, f"{HINT_PREFIX}<name>"]
