"""The management API over HTTP: requests, pages, downloads and errors as CLIError."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from atpctl import __version__
from atpctl.contexts import Target
from atpctl.errors import (
    NOT_FOUND,
    UNAVAILABLE,
    CLIError,
    error_message,
    status_code_exit,
)

API = "/api/v1/"
PAGE = 200
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class Client:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.http = httpx.Client(
            base_url=target.server + API,
            headers={
                "Authorization": f"Bearer {target.token}",
                "User-Agent": f"atpctl/{__version__}",
                "Accept": "application/json",
            },
            timeout=TIMEOUT,
            verify=target.verify,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    # --- requests --------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CLIError(f"{self.target.server} did not answer in time", UNAVAILABLE) from None
        except httpx.HTTPError as exc:
            raise CLIError(f"cannot reach {self.target.server}: {exc}", UNAVAILABLE) from None
        check(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=_params(params)).json()

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, json=body or {}, params=_params(params)).json()

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every row of a paginated collection, following `next` to the end."""
        params = {"limit": PAGE, **params}
        page = self.get(path, **params)
        if isinstance(page, list):
            return page
        rows = list(page.get("results", []))
        while page.get("next"):
            page = self.request("GET", page["next"]).json()
            rows.extend(page.get("results", []))
        return rows

    @contextmanager
    def stream(self, path: str, **params: Any) -> Iterator[httpx.Response]:
        """A download, read in chunks by the caller."""
        try:
            with self.http.stream("GET", path, params=_params(params)) as response:
                if response.status_code >= 400:
                    response.read()
                check(response)
                yield response
        except httpx.TimeoutException:
            raise CLIError(f"{self.target.server} did not answer in time", UNAVAILABLE) from None
        except httpx.HTTPError as exc:
            raise CLIError(f"cannot reach {self.target.server}: {exc}", UNAVAILABLE) from None

    # --- names to ids ----------------------------------------------------------------------

    def one(self, path: str, what: str, label: str, /, **filters: Any) -> dict[str, Any]:
        """The row of a collection the filters pick, or a NOT_FOUND error naming `label`."""
        rows = self.get(path, limit=2, **filters).get("results", [])
        if not rows:
            raise CLIError(f"no {what} named {label!r}", NOT_FOUND)
        return rows[0]

    def provider(self, ref: str) -> dict[str, Any]:
        if _is_uuid(ref):
            return self.get(f"providers/{ref}/")
        return self.one("providers/", "provider", ref, name=ref)

    def route(self, ref: str) -> dict[str, Any]:
        if _is_uuid(ref):
            return self.get(f"routes/{ref}/")
        return self.one("routes/", "route", ref, name=ref)

    def tenant(self, ref: str) -> dict[str, Any]:
        if _is_uuid(ref):
            return self.get(f"tenants/{ref}/")
        return self.one("tenants/", "tenant", ref, slug=ref)

    def project(self, tenant: dict[str, Any], ref: str) -> dict[str, Any]:
        if _is_uuid(ref):
            return self.get(f"projects/{ref}/")
        return self.one(
            "projects/", f"project of {tenant['slug']}", ref, tenant=tenant["id"], slug=ref
        )

    def api_key(self, ref: str) -> dict[str, Any]:
        """A key by id, or by `tenant/name` among the tenant's live keys."""
        if _is_uuid(ref):
            return self.get(f"api-keys/{ref}/")
        tenant_ref, sep, name = ref.partition("/")
        if not sep or not tenant_ref or not name:
            raise CLIError(f"name a key by its id or as TENANT/NAME: {ref!r}", NOT_FOUND)
        tenant = self.tenant(tenant_ref)
        return self.one(
            "api-keys/", "live key", ref, tenant=tenant["id"], name=name, revoked="false"
        )


def check(response: httpx.Response) -> None:
    """Raise the API's error as a CLIError, its exit status by HTTP status."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    message = error_message(body) if body else ""
    if not message:
        message = response.reason_phrase or "error"
    kind = {401: "not authenticated", 403: "permission denied", 404: "not found"}.get(
        response.status_code, "error"
    )
    if response.status_code >= 500:
        kind = "server error"
    raise CLIError(
        f"{kind} ({response.status_code}): {message}", status_code_exit(response.status_code)
    )


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as the API spells them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == () or value == []:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        out[key] = value
    return out


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
