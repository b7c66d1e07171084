"""Stored prompt and response bodies: encrypted on the data plane, written behind, read audited.

A tenant with `store_bodies` on has each settled request's bodies kept as one
StoredExchange. The data plane's settle step calls `record_exchange`, which serialises and
encrypts the bodies at once (nothing in clear waits in a queue) and queues the row; the
queue's worker inserts batches. Reading a body back is a deliberate act: `exchange_reveal`
decrypts one exchange and leaves an `exchange.viewed` event on the audit chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import transaction

from apps.audit.context import AuditActor
from apps.audit.models import AuditEvent, StoredExchange
from apps.audit.services import audit_record
from apps.routing.writebehind import Row, WriteBehindQueue, register
from atp_site.lib import crypto
from atp_site.lib.bulk import RowInserter
from atp_site.lib.journal import by_request
from atp_site.lib.storable import json_text

logger = logging.getLogger(__name__)

# The retention classification stored bodies are purged under (see apps.audit.retention).
BODIES = "bodies"
# The data classification of a stored exchange when the request carries none of its own.
DEFAULT_CLASSIFICATION = "confidential"


def _encrypt_body(body: dict | None) -> str:
    if body is None:
        return ""
    # json_text stores any body (lone surrogates, deep nesting, odd types as text), so
    # the exchange of a request with hostile content is kept like any other.
    return crypto.encrypt(json_text(body))


def _decrypt_body(token: str) -> dict | None:
    if not token:
        return None
    return orjson.loads(crypto.decrypt(token))


def exchange_row(row: Row, request_body: dict | None, response_body: dict | None) -> Row:
    """The StoredExchange row for a settled request's log row, bodies encrypted."""
    created_at = row.get("created_at") or datetime.now(UTC)
    return {
        "request_id": str(row.get("request_id") or "")[:128],
        "tenant_id": row.get("tenant_id"),
        "api_key_id": row.get("api_key_id"),
        "end_user": str(row.get("end_user") or "")[:256],
        "endpoint": str(row.get("endpoint") or "")[:64],
        "model": str(row.get("model") or row.get("requested_model") or "")[:200],
        "http_status": row.get("http_status"),
        "created_at": created_at,
        "classification": str(row.get("classification") or DEFAULT_CLASSIFICATION)[:32],
        "request_encrypted": _encrypt_body(request_body),
        "response_encrypted": _encrypt_body(response_body),
    }


stored_exchanges = register(
    WriteBehindQueue(
        RowInserter("audit.StoredExchange"),
        "exchanges",
        dedupe=by_request("audit.StoredExchange", "created_at"),
        classification=BODIES,
    )
)


def record_exchange(row: Row, request_body: dict | None, response_body: dict | None) -> None:
    """Queue the encrypted bodies of a settled request; never raises into the response path.

    `row` is the request log row settle() built. Bodies that cannot be serialised or
    encrypted are logged with the request id (never their content) and dropped: the
    caller's answer has already been decided and must not change because of storage.
    """
    try:
        stored_exchanges.put(exchange_row(row, request_body, response_body))
    except Exception:
        logger.exception(
            "stored bodies of request %s could not be queued", row.get("request_id", "")
        )


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RevealedExchange:
    """One exchange's bodies in clear, or why they could not be decrypted."""

    request_body: dict | None
    response_body: dict | None
    error: str = ""


def exchange_reveal(
    *, exchange: StoredExchange, actor: AuditActor | None = None
) -> RevealedExchange:
    """Decrypt an exchange's bodies and audit the viewing (`exchange.viewed`).

    Callers check permission first (apps.audit.selectors.exchange_body_allowed). A body
    encrypted under a key no longer configured is reported, not raised, and the viewing is
    audited as a failure.
    """
    try:
        revealed = RevealedExchange(
            request_body=_decrypt_body(exchange.request_encrypted),
            response_body=_decrypt_body(exchange.response_encrypted),
        )
    except crypto.DecryptionError:
        revealed = RevealedExchange(
            None,
            None,
            "The bodies were encrypted with a key missing from ATP_ENCRYPTION_KEYS.",
        )
    audit_record(
        event_type="exchange.viewed",
        action="view",
        outcome=AuditEvent.Outcome.FAILURE if revealed.error else AuditEvent.Outcome.SUCCESS,
        tenant_id=exchange.tenant_id,
        resource_type="exchange",
        resource_id=str(exchange.pk),
        data={"request_id": exchange.request_id, "classification": exchange.classification},
        classification="restricted",
        actor=actor,
    )
    return revealed


def exchanges_for_subject(
    *, tenant_id: Any, subject: str, bodies: bool, actor: AuditActor | None = None
) -> list[dict[str, Any]]:
    """Every stored exchange of one tenant's end user, oldest first (for exports).

    With `bodies` (the caller checked the body permission) each exchange's bodies are
    decrypted through `exchange_reveal`, so every one shown leaves an `exchange.viewed`
    event; without, only the metadata is listed.
    """
    documents = []
    exchanges = StoredExchange.objects.filter(tenant_id=tenant_id, end_user=subject)
    for exchange in exchanges.order_by("created_at", "pk"):
        item: dict[str, Any] = {
            "request_id": exchange.request_id,
            "tenant_id": str(exchange.tenant_id) if exchange.tenant_id else None,
            "created_at": exchange.created_at.isoformat(),
            "endpoint": exchange.endpoint,
            "model": exchange.model,
            "classification": exchange.classification,
        }
        if bodies:
            revealed = exchange_reveal(exchange=exchange, actor=actor)
            item["request"], item["response"] = revealed.request_body, revealed.response_body
            if revealed.error:
                item["error"] = "encrypted with a key missing from ATP_ENCRYPTION_KEYS"
        documents.append(item)
    return documents


@transaction.atomic
def exchanges_erase_subject(*, tenant_id: Any, subject: str) -> int:
    """Delete every stored exchange of one tenant's end user; returns how many went."""
    deleted, _ = StoredExchange.objects.filter(tenant_id=tenant_id, end_user=subject).delete()
    return deleted
