"""Errors raised by providers and their adapters."""

from __future__ import annotations

from atp_site.lib.errors import ATPError


class UpstreamError(ATPError):
    """An upstream call failed. `status` is what ATP answers, not what the upstream said.

    One call (applied by `adapters.base.error_from_status` and `UpstreamCall`):
    upstream 400/422 -> 400 (the request was bad; not retryable),
    upstream 401/403 -> 502 `upstream_auth_error` (ATP's credential, not the caller's),
    upstream 404 -> 502 `upstream_not_found`, 408 / timeouts -> 504, 429 -> 429 (but
    OpenAI's `insufficient_quota` -> 502 `upstream_quota_exhausted`), 500/502 -> 502,
    503/529 -> 503, 3xx -> 502 `upstream_redirect` (never followed), a body over
    ATP_UPSTREAM_MAX_BODY_BYTES -> 502 `upstream_body_too_large`, connection failures ->
    502; 5xx, 429, timeouts and connection failures are retryable. When no candidate is
    left, apps.routing.pipeline.execute folds the attempts into one error; docs/errors.md
    has the whole table.
    """

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True

    def __init__(self, message: str, *, upstream_status: int | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"
    retryable = True


class UnsupportedFeature(ATPError):
    """The request asks for something the chosen provider's protocol cannot express."""

    status = 400
    type = "invalid_request_error"
    code = "unsupported_parameter"
    retryable = False
