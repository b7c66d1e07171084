"""Step: governance — classify the request, apply the policies, redact, guard.

Runs after the body is validated and before routing, on every /v1 request that sends text
to a model (chat completions, messages, embeddings, the WebSocket's requests):

1. Detection (apps.policies.detection) over every text the request would send: message
   contents and text parts, tool-call arguments, tool results, the system prompt,
   embedding inputs. The structured types always; names and addresses only when a policy
   of the tenant redacts them.
2. Classification: the key's (else the tenant's) default; a caller may raise it with
   `atp.data_classification` or `X-ATP-Data-Classification`, never lower it; detection
   raises it to `confidential` for personal data and to `restricted` for secrets.
3. The tenant's policies (compiled in the snapshot, apps.policies.engine) decide: an
   enforced deny is a 403 `policy_denied` naming the policy; injection guards score the
   messages (403 `injection_blocked` or a flag); redaction rewrites the texts in place
   (403 `pii_blocked` for a type in block mode); routing constraints narrow what the
   request may reach (see `permits`), with every removed candidate explained in the
   routing decision; a cost cap becomes the request's `max_cost_usd`.

What was found, redacted and decided travels on the RequestContext to the request log and
the audit event (counts per entity type, never values).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from apps.policies import detection
from apps.policies.engine import CLASSIFICATION_RANK as RANK
from apps.policies.engine import CLASSIFICATIONS, EMPTY, Decision, Facts
from apps.policies.redaction import EgressScanner, Redaction, StreamRestorer
from apps.routing.engine.regions import region_matches
from apps.routing.pipeline.context import RequestContext
from apps.routing.snapshot import DeploymentInfo, KeyInfo, Snapshot
from atp_site.lib import tracing
from atp_site.lib.errors import InvalidRequest, PermissionDenied


class PolicyDenied(PermissionDenied):
    code = "policy_denied"


class InjectionBlocked(PermissionDenied):
    code = "injection_blocked"


class RegionUnavailable(PermissionDenied):
    code = "region_unavailable"


class Governance:
    """What governance decided for one request."""

    __slots__ = (
        "classification",
        "entities",
        "decision",
        "redaction",
        "egress",
        "injection",
        "regions",
        "_findings",
    )

    def __init__(self) -> None:
        self.classification = "internal"
        self.entities: frozenset[str] = frozenset()
        self.decision: Decision | None = None
        self.redaction: Redaction | None = None
        self.egress: EgressScanner | None = None
        self.injection: tuple[float, str, tuple[str, ...]] | None = None
        # Regions the request must stay in (tenant, key and policies together); () = any.
        self.regions: tuple[str, ...] = ()
        self._findings: dict[str, list] = {}

    # -- routing -----------------------------------------------------------------------

    @property
    def constrains(self) -> bool:
        decision = self.decision
        return bool(
            self.regions or (decision is not None and (decision.routes or decision.resource_rules))
        )

    def deployment_reason(self, dep: DeploymentInfo) -> str | None:
        """Why governance keeps this request away from `dep`, or None (the routing
        engine's `policy(dep)` hook)."""
        if self.regions and not region_matches(dep.region, self.regions):
            return f"outside the regions allowed for this API key ({', '.join(self.regions)})"
        if self.decision is not None:
            return self.decision.deployment_reason(dep)
        return None

    def permitted(self, snapshot: Snapshot) -> frozenset[str] | None:
        """The ids of the deployments governance lets this request reach, or None when it
        constrains nothing."""
        if not self.constrains:
            return None
        decision = self.decision
        if decision is None or not (decision.routes or decision.resource_rules):
            # Only the key's regions: the same set for every request of the key, kept with
            # the snapshot's other reach sets.
            cache_key = ("allowed-regions", self.regions)
            found = snapshot.reaches.get(cache_key)
            if found is None:
                found = snapshot.reaches[cache_key] = frozenset(
                    dep.id
                    for dep in snapshot.deployments
                    if region_matches(dep.region, self.regions)
                )
            return found  # type: ignore[return-value]
        reason = self.deployment_reason
        return frozenset(dep.id for dep in snapshot.deployments if reason(dep) is None)

    def unavailable(self, model: str) -> PermissionDenied:
        """The refusal when nothing the request asked for is allowed."""
        why = []
        if self.regions:
            why.append(f"regions {', '.join(self.regions)}")
        decision = self.decision
        if decision is not None:
            if decision.regions is not None:
                why.append(f"policy regions {', '.join(decision.regions) or '(none)'}")
            if decision.local_only:
                why.append("local models only")
            if decision.exclude_providers:
                why.append("excluded providers " + ", ".join(sorted(decision.exclude_providers)))
        named = "; ".join(why) or "this request's policies"
        return RegionUnavailable(
            f"No deployment of '{model}' satisfies the data-residency and routing constraints "
            f"of this request ({named}).",
            param="model",
        )

    # -- records -----------------------------------------------------------------------

    def policy_record(self) -> dict[str, Any] | None:
        decision = self.decision
        out = None
        if decision is not None and (decision.matched or decision.logged):
            out = decision.to_dict()
        if self.injection is not None:
            score, action, features = self.injection
            out = out or {}
            out["injection_guard"] = {
                "score": score,
                "action": action,
                "features": list(features),
            }
        return out

    def evidence(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.redaction is not None:
            counts.update(self.redaction.evidence())
        if self.egress is not None:
            for kind, n in self.egress.counts.items():
                counts[f"egress:{kind}"] = n
        return counts


# -- where the texts are ---------------------------------------------------------------


def _parts(content: Any, role: str) -> Iterator[tuple[Any, Any, str]]:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        return
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            yield part, "text", role
        elif kind == "tool_result":  # Anthropic: a tool's answer inside a user turn
            inner = part.get("content")
            if isinstance(inner, str):
                yield part, "content", "tool"
            else:
                yield from _parts(inner, "tool")
        elif kind == "tool_use" and isinstance(part.get("input"), dict):
            yield from _leaves(part["input"], role)


def _leaves(value: Any, role: str, depth: int = 0) -> Iterator[tuple[Any, Any, str]]:
    """Every string inside a JSON value (tool inputs), as (container, key)."""
    if depth > 32:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, str):
            yield value, key, role
        elif isinstance(item, dict | list):
            yield from _leaves(item, role, depth + 1)


def text_slots(body: Mapping[str, Any]) -> list[tuple[Any, Any, str]]:
    """(container, key, source) for every text a chat, messages or embeddings request
    sends: container[key] is a str; source is the message's role ("tool" for tool
    results)."""
    slots: list[tuple[Any, Any, str]] = []
    system = body.get("system")  # Anthropic
    if isinstance(system, str):
        slots.append((body, "system", "system"))
    elif isinstance(system, list):
        slots.extend(_parts(system, "system"))
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = message.get("role") if isinstance(message.get("role"), str) else "user"
        content = message.get("content")
        if isinstance(content, str):
            slots.append((message, "content", role))
        else:
            slots.extend(_parts(content, role))
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                slots.append((fn, "arguments", role))
    inputs = body.get("input")  # embeddings
    if isinstance(inputs, str):
        slots.append((body, "input", "user"))
    elif isinstance(inputs, list):
        slots.extend((inputs, i, "user") for i, item in enumerate(inputs) if isinstance(item, str))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        slots.append((body, "prompt", "user"))
    return slots


# -- classification --------------------------------------------------------------------


def _requested_classification(body: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> str:
    atp = body.get("atp")
    value = atp.get("data_classification") if isinstance(atp, Mapping) else None
    param = "atp.data_classification"
    if value is None:
        raw = headers.get(b"x-atp-data-classification")
        if raw is None:
            return ""
        value = raw.decode("latin-1").strip().lower()
        param = "X-ATP-Data-Classification"
    if not isinstance(value, str) or value not in RANK:
        raise InvalidRequest(
            f"'{param}' must be one of: {', '.join(CLASSIFICATIONS)}.", param=param
        )
    return value


def _raised(entities: frozenset[str]) -> str:
    if "SECRET" in entities:
        return "restricted"
    if entities:
        return "confidential"
    return ""


def _highest(*names: str) -> str:
    return max((n for n in names if n), key=RANK.__getitem__, default="internal")


def _groups(body: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> tuple[str, frozenset]:
    atp = body.get("atp")
    role = ""
    groups: frozenset[str] = frozenset()
    if isinstance(atp, Mapping):
        given_role = atp.get("end_user_role")
        if given_role is not None:
            if not isinstance(given_role, str):
                raise InvalidRequest(
                    "'atp.end_user_role' must be a string.", param="atp.end_user_role"
                )
            role = given_role
        given = atp.get("end_user_groups")
        if given is not None:
            if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
                raise InvalidRequest(
                    "'atp.end_user_groups' must be an array of strings.",
                    param="atp.end_user_groups",
                )
            groups = frozenset(given)
    if not role and b"x-atp-end-user-role" in headers:
        role = headers[b"x-atp-end-user-role"].decode("latin-1").strip()
    if not groups and b"x-atp-end-user-groups" in headers:
        raw = headers[b"x-atp-end-user-groups"].decode("latin-1")
        groups = frozenset(g.strip() for g in raw.split(",") if g.strip())
    return role, groups


@functools.lru_cache(maxsize=1024)
def _hash_key(tenant_id: str) -> bytes:
    """The hash mode's HMAC key of a tenant (derived from the project's secret key)."""
    secret = settings.SECRET_KEY.encode()
    return hashlib.sha256(b"atp-redaction:" + secret + tenant_id.encode()).digest()


# -- the step --------------------------------------------------------------------------


@tracing.traced("atp.policy")
def inbound(
    snapshot: Snapshot,
    ctx: RequestContext,
    body: dict[str, Any],
    headers: Mapping[bytes, bytes],
    *,
    endpoint: str,
    tokens: int = 0,
) -> Governance:
    """Classify, decide and redact `body` in place; raise the refusals. The result is also
    kept on `ctx.governance`."""
    key = ctx.key
    assert key is not None
    gov = Governance()
    ctx.governance = gov
    requested = _requested_classification(body, headers)
    slots = text_slots(body)
    findings = gov._findings
    found: set[str] = set()
    detect = detection.detect
    for container, name, _ in slots:
        text = container[name]
        if text in findings:
            continue
        hits = findings[text] = detect(text)
        for hit in hits:
            found.add(hit.type)
    gov.entities = entities = frozenset(found)
    gov.classification = _highest(key.classification, requested, _raised(entities))
    gov.regions = key.allowed_regions

    evaluator = snapshot.policies or EMPTY
    if len(evaluator):
        role, groups = _groups(body, headers)
        now = datetime.now(UTC)
        atp = body.get("atp")
        decision = evaluator.evaluate(
            Facts(
                tenant=key.tenant_slug,
                tenant_id=key.tenant_id,
                project=key.project_id or "",
                key=key.id,
                end_user=ctx.end_user,
                role=role,
                groups=groups,
                endpoint=endpoint,
                classification=gov.classification,
                entities=entities,
                tokens=tokens,
                hour=now.hour,
                weekday=now.weekday(),
                model=ctx.requested_model,
                hints=atp if isinstance(atp, Mapping) else {},
            )
        )
        gov.decision = decision
        if decision.denied is not None:
            match = decision.denied
            raise PolicyDenied(
                f"The request was denied by the policy '{match.policy}'"
                + (f": {match.why}" if match.why else ".")
            )
        if decision.injection is not None:
            _guard_injection(gov, body, decision.injection)
        if decision.redact:
            _redact(gov, key, decision.redact, slots)
        if decision.egress is not None:
            types, mode = decision.egress
            gov.egress = EgressScanner(types, mode, _finder(gov, types))
    return gov


def _finder(gov: Governance, types: Iterable[str]):
    """Detection for `types`: the structured findings the step already has, filtered; names
    and addresses through the detector itself, which resolves their overlaps with the
    structured types."""
    wanted = frozenset(detection.ENTITY_TYPES) if "*" in types else frozenset(types)
    detect = detection.detect
    if not wanted.isdisjoint(detection.PEOPLE):
        return lambda text: detect(text, wanted)
    cache = gov._findings

    def find(text: str) -> list:
        hits = cache.get(text)
        if hits is None:
            hits = detect(text)
        return [h for h in hits if h.type in wanted]

    return find


def _redact(gov: Governance, key: KeyInfo, modes: Mapping[str, str], slots: list) -> None:
    if "*" in modes:
        every = modes["*"]
        modes = {kind: modes.get(kind, every) for kind in detection.ENTITY_TYPES}
    redaction = Redaction(modes, _finder(gov, modes.keys()), _hash_key(key.tenant_id))
    redaction.redact_slots((container, name) for container, name, _ in slots)
    gov.redaction = redaction


def _guard_injection(gov: Governance, body: Mapping[str, Any], rule: tuple[float, str]) -> None:
    from apps.policies.guards.injection import scan_messages

    threshold, action = rule
    messages = body.get("messages")
    if not isinstance(messages, list) or action == "allow":
        return
    verdict = scan_messages(messages)
    if verdict.score < threshold:
        return
    gov.injection = (round(verdict.score, 3), action, verdict.features[:5])
    if action == "block":
        raise InjectionBlocked(
            "The request was refused: it looks like a prompt-injection attempt "
            f"(score {verdict.score:.2f}, threshold {threshold:.2f}).",
            details={"features": list(verdict.features[:5])},
        )


def touches_answers(ctx: RequestContext) -> bool:
    gov = ctx.governance
    return gov is not None and (
        gov.egress is not None or (gov.redaction is not None and gov.redaction.restorable)
    )


# -- answers ---------------------------------------------------------------------------


def _message_texts(response: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every text of an OpenAI chat completion's choices."""
    for choice in response.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            yield message, "content"
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                yield fn, "arguments"


def scan_answer(ctx: RequestContext, response: dict[str, Any]) -> None:
    """The egress guard over a whole answer, in place (what is cached and stored is the
    scanned answer); raises EgressBlocked in block mode."""
    gov = ctx.governance
    if gov is None or gov.egress is None:
        return
    scan = gov.egress.scan
    for container, name in _message_texts(response):
        container[name] = scan(container[name])


def restored(ctx: RequestContext, response: dict[str, Any]) -> dict[str, Any]:
    """The answer as the caller sees it: a copy with this request's placeholders put back
    (the original, kept by the cache and the stored exchange, stays unrestored)."""
    gov = ctx.governance
    if gov is None or gov.redaction is None or not gov.redaction.restorable:
        return response
    restore = gov.redaction.restore
    out = dict(response)
    choices = []
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            choices.append(choice)
            continue
        message = dict(choice["message"])
        if isinstance(message.get("content"), str):
            message["content"] = restore(message["content"])
        if message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    call = {**call, "function": {**fn, "arguments": restore(fn["arguments"])}}
                calls.append(call)
            message["tool_calls"] = calls
        choices.append({**choice, "message": message})
    out["choices"] = choices
    return out


class StreamGovernor:
    """Egress scanning and placeholder restoration over a streamed chat completion.

    `process(chunk)` returns the chunk as scanned (what the response cache may keep) and
    the chunk as the caller sees it (placeholders restored); text held back at a chunk
    boundary (a value or placeholder that may continue) comes out in a later chunk or at
    the choice's finish.
    """

    def __init__(self, gov: Governance) -> None:
        self.gov = gov
        self._egress: dict[int, EgressScanner] = {}
        self._restore: dict[Any, StreamRestorer] = {}

    def _scanner(self, index: int) -> EgressScanner | None:
        egress = self.gov.egress
        if egress is None:
            return None
        scanner = self._egress.get(index)
        if scanner is None:
            scanner = self._egress[index] = EgressScanner(
                egress.types, egress.mode, egress.finder, egress.window
            )
            scanner.counts = egress.counts  # one evidence count for the request
        return scanner

    def _restorer(self, key: Any) -> StreamRestorer | None:
        redaction = self.gov.redaction
        if redaction is None or not redaction.restorable:
            return None
        restorer = self._restore.get(key)
        if restorer is None:
            restorer = self._restore[key] = StreamRestorer(redaction)
        return restorer

    def process(self, chunk: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        choices = chunk.get("choices")
        if not choices:
            return chunk, chunk
        shown_choices = []
        for choice in choices:
            if not isinstance(choice, dict):
                shown_choices.append(choice)
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                delta = {}
            finished = bool(choice.get("finish_reason"))
            shown_delta = dict(delta)
            content = delta.get("content")
            if isinstance(content, str) or finished:
                text = content if isinstance(content, str) else ""
                scanner = self._scanner(index)
                if scanner is not None:
                    text = scanner.feed(text)
                    if finished:
                        text += scanner.flush()
                    if isinstance(content, str) or text:
                        delta["content"] = text
                restorer = self._restorer((index, "content"))
                shown = text
                if restorer is not None:
                    shown = restorer.feed(text)
                    if finished:
                        shown += restorer.flush()
                if isinstance(content, str) or shown:
                    shown_delta["content"] = shown
            calls = delta.get("tool_calls")
            if calls and self.gov.redaction is not None and self.gov.redaction.restorable:
                shown_calls = []
                for position, call in enumerate(calls):
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                        slot = call.get("index", position)
                        restorer = self._restorer((index, "tool", slot))
                        args = restorer.feed(fn["arguments"])
                        if finished:
                            args += restorer.flush()
                        call = {**call, "function": {**fn, "arguments": args}}
                    shown_calls.append(call)
                shown_delta["tool_calls"] = shown_calls
            shown_choices.append({**choice, "delta": shown_delta})
        return chunk, {**chunk, "choices": shown_choices}

    def leftovers(self, template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """What is still held back when the stream ends without a finish: one last chunk
        (scanned, shown), or None."""
        scanned_parts: dict[int, str] = {}
        for index, scanner in self._egress.items():
            scanned_parts[index] = scanner.flush()
        shown_parts: dict[int, str] = {}
        indexes = set(scanned_parts) | {k[0] for k in self._restore if k[1] == "content"}
        for index in sorted(indexes):
            text = scanned_parts.get(index, "")
            restorer = self._restorer((index, "content"))
            shown_parts[index] = restorer.feed(text) + restorer.flush() if restorer else text
        if not any(scanned_parts.values()) and not any(shown_parts.values()):
            return None
        base = {k: template.get(k) for k in ("id", "object", "created", "model") if k in template}

        def chunk(parts: dict[int, str]) -> dict[str, Any]:
            return {
                **base,
                "choices": [
                    {"index": i, "delta": {"content": t}, "finish_reason": None}
                    for i, t in sorted(parts.items())
                    if t
                ],
            }

        return chunk(scanned_parts), chunk(shown_parts)


def stream_governor(ctx: RequestContext) -> StreamGovernor | None:
    return StreamGovernor(ctx.governance) if touches_answers(ctx) else None
