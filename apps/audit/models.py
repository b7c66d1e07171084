"""The audit log: hash-chained, signed, append-only events, and the chain's head."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from atp_site.lib.uuids import uuid7


class AuditEvent(models.Model):
    """One thing that happened, linked to the event before it.

    `hash` is SHA-256 over the canonical serialisation of the event's fields and
    `prev_hash` (see apps.audit.chain); `signature` is an HMAC of `hash` under the signing
    key named by `key_id`. Rows are never updated or deleted by the application; on
    PostgreSQL a trigger rejects both (retention purges go through
    apps.audit.services, which replaces a purged range with a signed checkpoint).
    Tenant and user are plain values, not foreign keys: events outlive what they describe.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        DENIED = "denied", "Denied"

    class Source(models.TextChoices):
        CONSOLE = "console", "Console"
        ADMIN = "admin", "Django admin"
        API = "api", "Management API"
        CONFIG = "config", "Configuration file"
        CLI = "cli", "Command line"
        DATA_PLANE = "data_plane", "Data plane"
        SYSTEM = "system", "System"

    sequence = models.PositiveBigIntegerField(unique=True)
    event_id = models.UUIDField(default=uuid7, unique=True, editable=False)
    event_type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField(default=timezone.now)
    tenant_id = models.UUIDField(null=True, blank=True)
    user_id = models.CharField(max_length=64, blank=True)
    actor = models.CharField(max_length=200, blank=True, help_text="Who acted, as shown.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SYSTEM)
    session_id = models.CharField(
        max_length=64, blank=True, help_text="A digest of the session, never the session key."
    )
    request_id = models.CharField(max_length=128, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    resource_type = models.CharField(max_length=100, blank=True)
    resource_id = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    data = models.JSONField(default=dict, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    classification = models.CharField(max_length=32, default="internal")
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    # Not indexed: a hash is random, so a unique index on it took a random page per insert
    # and made appends slower as the log grew. The chain's links, checked by verification,
    # are what make a hash trustworthy; a lookup by hash only happens when verification
    # explains a break (apps.audit.walk), rare enough to scan for.
    hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["tenant_id", "occurred_at"], name="audit_tenant_time"),
            models.Index(fields=["event_type", "occurred_at"], name="audit_type_time"),
            models.Index(fields=["occurred_at"], name="audit_time"),
            models.Index(fields=["user_id", "occurred_at"], name="audit_user_time"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_resource"),
            models.Index(fields=["request_id"], name="audit_request"),
            # The console's search: newest first (by id, which follows the sequence) within
            # one value of each filter, so a rare value never walks the whole table.
            models.Index(fields=["tenant_id", "id"], name="audit_tenant_id"),
            models.Index(fields=["event_type", "id"], name="audit_type_id"),
            models.Index(fields=["actor", "id"], name="audit_actor_id"),
            models.Index(fields=["action", "id"], name="audit_action_id"),
            models.Index(fields=["outcome", "id"], name="audit_outcome_id"),
            models.Index(fields=["classification", "id"], name="audit_class_id"),
        ]
        permissions = [
            ("verify_auditevent", "Can verify the audit chain"),
            ("export_auditevent", "Can export audit events"),
            ("report_auditevent", "Can download compliance reports"),
            ("export_data_subject", "Can export everything held about a data subject"),
            ("erase_data_subject", "Can erase a data subject"),
            # permissions.may(user, AuditEvent, "grant_auditor"): global only.
            ("grant_auditor_auditevent", "Can grant and revoke auditor access to tenants"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event_type} {self.outcome}"


class AuditChainHead(models.Model):
    """The single row holding the chain's last sequence number and hash.

    Appenders lock this row (SELECT ... FOR UPDATE) so concurrent writers in any number
    of processes extend one gap-free chain.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_single_head")]

    def __str__(self) -> str:
        return f"head #{self.sequence}"


class AuditSignedHead(models.Model):
    """An Ed25519-signed statement that the chain's event `sequence` had `hash`.

    `statement` holds the signed JSON exactly (apps.audit.heads); the other columns
    repeat it for queries. Written when a verification ends (`verified` true or false),
    by the nightly job and at shutdown (which also append it to the heads file outside
    the database), by a restore, and with each export. Rows are never updated; a trigger
    lets deletes through only inside the audit escape (apps.audit.guards).
    """

    class Reason(models.TextChoices):
        VERIFIED = "verified", "Verification"
        NIGHTLY = "nightly", "Nightly job"
        SHUTDOWN = "shutdown", "Shutdown"
        SEALED = "sealed", "Sealed on request"
        PERIODIC = "periodic", "Periodic seal"
        RESTORED = "restored", "Restore"
        EXPORT = "export", "Export"

    sequence = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    verified = models.BooleanField(
        null=True, help_text="Whether a verification up to here passed; empty: not verified."
    )
    statement = models.TextField(help_text="The signed statement, canonical JSON.")
    key = models.CharField(max_length=32, help_text="Fingerprint of the signing key.")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, base64.")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["sequence"], name="audit_head_sequence")]

    def __str__(self) -> str:
        return f"signed head #{self.sequence} ({self.reason})"


class RetentionPolicy(models.Model):
    """How long records of one data classification are kept, for one tenant or all.

    The most specific policy wins: tenant and classification, then tenant with any
    classification (blank), then the same two for all tenants (no tenant), then the
    ATP_*_RETENTION_DAYS settings. Request logs use the classification "requests", stored
    prompt and response bodies "bodies"; audit events use their own classification.
    """

    tenant_id = models.UUIDField(null=True, blank=True, help_text="Empty: every tenant.")
    classification = models.CharField(max_length=32, blank=True, help_text="Empty: any.")
    days = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "classification"]
        verbose_name_plural = "retention policies"
        permissions = [
            # Dedicated: retention on what audit events are classified as can purge evidence.
            ("change_audit_retention", "Can change retention of audit classifications"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "classification"],
                condition=models.Q(tenant_id__isnull=False),
                name="retention_unique_per_tenant",
            ),
            models.UniqueConstraint(
                fields=["classification"],
                condition=models.Q(tenant_id__isnull=True),
                name="retention_unique_global",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id or 'all tenants'} / {self.classification or 'any'}: {self.days} d"


class StoredExchange(models.Model):
    """The prompt and response bodies of one /v1 request, encrypted at rest.

    Kept only for tenants that turned `store_bodies` on. Bodies are JSON encrypted with
    atp_site.lib.crypto (Fernet under ATP_ENCRYPTION_KEYS, so keys rotate); the other
    fields are plain so exchanges can be listed, scoped and purged without decrypting.
    Rows are written behind the response (apps.audit.bodies), removed by retention under
    the classification "bodies" and by data-subject erasure.
    """

    request_id = models.CharField(max_length=128, db_index=True)
    tenant_id = models.UUIDField(null=True, blank=True)
    api_key_id = models.UUIDField(null=True, blank=True)
    end_user = models.CharField(max_length=256, blank=True)
    endpoint = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    classification = models.CharField(
        max_length=32, default="confidential", help_text="Data classification of the bodies."
    )
    request_encrypted = models.TextField(blank=True)
    response_encrypted = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant_id", "created_at"], name="exchange_tenant_time"),
            models.Index(fields=["end_user"], name="exchange_end_user"),
            models.Index(fields=["created_at"], name="exchange_time"),
        ]
        permissions = [
            ("view_exchange_body", "Can view stored prompt and response bodies"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} ({self.created_at:%Y-%m-%d %H:%M})"


class Job(models.Model):
    """One run of a long operation (an export, a report, a verification), with its progress.

    Started by apps.audit.jobs.job_start and run by a Celery task (in process when
    embedded). A job is seen, and its result downloaded, only by users who hold every
    permission in `permissions` ("app_label.model:action") on every tenant in `tenant_ids`
    (null: every tenant, so only global holders) — the requester is judged the same way,
    so losing a role also loses the results. A large result is a file under
    ATP_DATA_DIR/jobs (`result_file`), a small one JSON (`result`); both expire after
    ATP_JOB_RESULT_HOURS.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tenant_ids = models.JSONField(
        null=True, blank=True, help_text="The tenants the result covers; empty: every tenant."
    )
    permissions = models.JSONField(
        default=list, help_text="What a viewer must hold on those tenants: app.model:action."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=200, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_file = models.CharField(max_length=200, blank=True)
    result_name = models.CharField(max_length=200, blank=True)
    result_type = models.CharField(max_length=100, blank=True)
    result_size = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requested_by", "created_at"], name="job_requester_time"),
            models.Index(fields=["kind", "created_at"], name="job_kind_time"),
            models.Index(fields=["expires_at"], name="job_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_100")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class ScheduledRun(models.Model):
    """One run of a periodic duty (a task in the beat schedule), written by atp_site.duties.

    A run that found another run of the same duty in progress is recorded as `skipped` and
    did nothing. `result` is a small JSON summary of what the duty returned; `error` the
    exception's class and message (shortened, credentials in URLs masked). Rows older than
    ATP_SCHEDULED_RUN_DAYS are deleted by the hourly `audit.jobs_expire`.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    task = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1, help_text="1, then 2 for a retry...")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    retry_in = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds until the retry a failed run scheduled."
    )
    task_id = models.CharField(max_length=64, blank=True, help_text="Celery's task id.")
    hostname = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["task", "started_at"], name="scheduled_run_task_time"),
            models.Index(fields=["status", "started_at"], name="scheduled_run_status_time"),
            models.Index(fields=["started_at"], name="scheduled_run_time"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.status} ({self.started_at:%Y-%m-%d %H:%M})"
