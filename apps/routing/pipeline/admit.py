"""Step: admit the routed request against its key's rate limits and budgets.

After routing, before the provider: one call to apps.costs.admission (one Redis round
trip when configured, nothing for a key without limits or budgets). A spent budget that
downgrades re-plans the request on its cheaper model or route and admits that instead.
The admission rides on the context until settle releases it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.costs import admission
from apps.costs.limits import COST, TOKENS
from apps.costs.overload import gate
from apps.providers import tokens
from apps.routing.pipeline.context import RequestContext
from apps.routing.snapshot import DeploymentInfo, Snapshot
from atp_site.lib.errors import ATPError


def enter(ctx: RequestContext) -> None:
    """Overload control by the key's service priority, as soon as the key is known (once
    per request); the edge calls `finish`."""
    if not ctx.in_flight:
        gate.enter(ctx.key.limits.priority)
        ctx.in_flight = True


def finish(ctx: RequestContext) -> None:
    """The request is over (answered, failed or cancelled): give back its overload slot,
    and release its limits and budget reservations if nothing settled them (a path that
    ended unexpectedly). Safe to call more than once."""
    if ctx.in_flight:
        ctx.in_flight = False
        gate.leave()
    if ctx.admission is not None and not ctx.admission.settled:
        admission.settle(ctx.admission, tokens_used=0, cost=Decimal(0))


def max_output(body: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return settings.ATP_DEFAULT_MAX_OUTPUT_TOKENS


def _ask(cands: list[DeploymentInfo], prompt: int, output: int, *, every: bool) -> admission.Ask:
    ask = admission.ask_for(prompt, output, [dep.prices for dep in cands])
    if every and len(cands) > 1:  # consensus calls every candidate
        ask.cost_units = sum(
            admission.ask_for(prompt, output, [dep.prices]).cost_units for dep in cands
        )
    return ask


def _refused_by_amount(exc: ATPError) -> bool:
    """A refusal a smaller token count could change: a token or cost limit, a budget."""
    return isinstance(exc, admission.BudgetExceeded) or exc.details.get("limit") in (TOKENS, COST)


async def _admit(
    ctx: RequestContext,
    body: dict[str, Any],
    cands: list[DeploymentInfo],
    *,
    every: bool,
    skip_budget: str = "",
) -> admission.Admission | admission.Downgrade:
    """Admit at the prompt's count when routing made one, else at its quick estimate
    (apps.providers.tokens.quick_prompt_estimate: counting with the tokenizer on every
    request costs more than the rest of admission). When a token limit or a budget refuses
    what was only an estimate, the prompt is counted exactly and asked for once more, so
    a refusal at the margin never comes from the estimate."""
    key_limits = ctx.key.limits
    prompt, output, exact = 0, 0, True
    if key_limits.needs_tokens:
        output = max_output(body)
        if ctx.prompt_tokens is not None:
            prompt = ctx.prompt_tokens
        else:
            prompt, exact = tokens.quick_prompt_estimate(body), False
    while True:
        ask = _ask(cands, prompt, output, every=every)
        try:
            result = await admission.admit(key_limits, ctx.request_id, ask, skip_budget=skip_budget)
            if exact or not isinstance(result, admission.Downgrade):
                return result
        except ATPError as exc:
            if exact or not _refused_by_amount(exc):
                raise
        prompt = ctx.prompt_tokens = tokens.estimate_prompt_tokens(body)
        exact = True


async def admit_chat(
    snapshot: Snapshot,
    ctx: RequestContext,
    body: dict[str, Any],
    plan: Any,
    replan: Any,
) -> Any:
    """Admit a chat request; returns the plan to run (a downgrade's when one applied).
    `replan(model)` plans the same request for another model or route."""
    enter(ctx)
    if not ctx.key.limits.active:
        return plan
    result = await _admit(ctx, body, plan.cands, every=plan.consensus is not None)
    if isinstance(result, admission.Downgrade):
        down = result
        plan = replan(down.model)
        result = await _admit(
            ctx, body, plan.cands, every=plan.consensus is not None, skip_budget=down.budget.id
        )
        if isinstance(result, admission.Downgrade):
            raise admission.BudgetExceeded(
                f"The budget '{result.budget.name}' is spent and its downgrade is spent too.",
                details={"budget": result.budget.name, "budget_id": result.budget.id},
            )
        result.downgraded_by = down.budget.name
        result.headers.append((b"x-atp-budget-downgrade", down.budget.name.encode()))
        if ctx.decision is not None:
            ctx.decision = {**ctx.decision, "budget_downgrade": down.budget.name}
    ctx.admission = result
    return plan


async def admit_tokens(ctx: RequestContext, cands: list[DeploymentInfo], prompt: int) -> None:
    """Admit a request with no output tokens (embeddings)."""
    enter(ctx)
    limits = ctx.key.limits
    if not limits.active:
        return
    result = await admission.admit(limits, ctx.request_id, _ask(cands, prompt, 0, every=False))
    if isinstance(result, admission.Downgrade):
        raise admission.BudgetExceeded(
            f"The budget '{result.budget.name}' is spent (embeddings are not downgraded).",
            details={"budget": result.budget.name, "budget_id": result.budget.id},
        )
    ctx.admission = result
