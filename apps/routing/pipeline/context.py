"""Per-request state carried through the pipeline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps.routing.snapshot import DeploymentInfo, KeyInfo
from atp_site.lib.errors import InvalidRequest
from atp_site.lib.identifiers import control_free
from atp_site.lib.request_ids import new_request_id, request_id_or_new


def request_id_from(headers: dict[bytes, bytes]) -> str:
    """The caller's x-request-id when it is a sane token, else a new one; one holding
    control characters is refused (InvalidRequest), as every identifier is."""
    given = headers.get(b"x-request-id")
    if not given:
        return new_request_id()
    text = given.decode("latin-1")
    if not control_free(text):
        raise InvalidRequest(
            "The X-Request-ID header must not contain control characters.",
            param="X-Request-ID",
        )
    return request_id_or_new(text)


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    started: float = field(default_factory=time.monotonic)
    trace_id: str = ""  # the caller's W3C trace context (or this request's trace), for the logs
    span: Any = None  # the request's OpenTelemetry span while it is open (tracing on only)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    key: KeyInfo | None = None
    # The deployments this request may reach (pipeline.reach.Reach); the execute step calls
    # nothing outside it. None only for calls made outside the pipeline (tests, tools).
    reach: Any = None
    requested_model: str = ""
    deployment: DeploymentInfo | None = None
    stream: bool = False
    end_user: str = ""
    first_token_at: float | None = None
    attempts: list[dict] = field(default_factory=list)
    # Routing: the route named by the request, the decision taken and the task cluster.
    route: str = ""
    decision: dict | None = None  # the decision as logged (RouteDecision.to_dict())
    route_decision: Any = None  # the engine's RouteDecision, for learning after the answer
    task_cluster: int | None = None
    cache: str = ""  # response cache outcome: "", "hit", "semantic_hit", "miss"
    shadow_of: str = ""  # set on a challenger's mirrored call
    # The rate-limit and budget admission (apps.costs.admission.Admission) settle releases,
    # and whether the request holds an overload-control slot the edge gives back.
    admission: Any = None
    in_flight: bool = False
    # The prompt's exact token count when routing counted it, for admission and usage.
    prompt_tokens: int | None = None
    # Governance (apps.routing.pipeline.govern.Governance): classification, the policies'
    # decision, redaction and guards; None before the step ran.
    governance: Any = None
    settled: bool = False  # the request log row is queued (apps.routing.pipeline.settle)
    # Bodies kept for the tenant's audit when it stores them (see apps.audit.bodies).
    request_body: dict | None = None
    response_body: dict | None = None

    def elapsed_ms(self, since: float | None = None) -> int:
        return int(((since or time.monotonic()) - self.started) * 1000)
