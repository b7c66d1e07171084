"""Console pages of the audit log: search, verification, exports, reports, data subjects,
retention policies, auditor grants, and the background jobs that run the long ones.

Every page asks apps.tenants.permissions through the audit selectors, as the management API
does (apps/audit/api/views.py), and writes only through the audited services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from apps.audit import job_kinds
from apps.audit.access import auditor_grant, auditor_revoke
from apps.audit.filters import AuditEventFilterSet, ScheduledRunFilterSet
from apps.audit.forms import (
    AuditorGrantForm,
    ExportForm,
    ReportForm,
    RetentionPolicyForm,
    SubjectEraseForm,
    SubjectExportForm,
    VerifyForm,
)
from apps.audit.jobs import KINDS, job_get, job_list, job_start, result_path
from apps.audit.models import (
    AuditEvent,
    AuditSignedHead,
    Job,
    RetentionPolicy,
    ScheduledRun,
    StoredExchange,
)
from apps.audit.privacy import subject_erase
from apps.audit.retention import (
    audit_min_retention_days,
    retention_policy_delete,
    retention_policy_save,
)
from apps.audit.scheduled import duty_list, run_list
from apps.audit.selectors import (
    audit_event_get,
    audit_event_integrity,
    audit_tenant_ids,
    auditor_grants,
    subject_bodies_allowed,
    subject_holdings,
    tenant_names,
)
from apps.audit.tables import AuditEventTable, RetentionPolicyTable, ScheduledRunTable
from apps.tenants import permissions
from apps.tenants.models import Tenant
from atp_site.console.views import (
    ConsoleView,
    FormView,
    ObjectActionView,
    ObjectFormView,
    ObjectListView,
    hx_redirect,
    is_htmx,
)

# The audit section's tabs: (label, URL name, permission needed to see the tab).
TABS: tuple[tuple[str, str, tuple[str, str]], ...] = (
    ("Events", "audit:event-list", ("audit.auditevent", "view")),
    ("Verify", "audit:verify", ("audit.auditevent", "verify")),
    ("Export", "audit:export", ("audit.auditevent", "export")),
    ("Reports", "audit:report", ("audit.auditevent", "report")),
    ("Data subjects", "audit:subject-export", ("audit.auditevent", "export_subject")),
    ("Erase", "audit:subject-erase", ("audit.auditevent", "erase_subject")),
    ("Retention", "audit:retentionpolicy-list", ("audit.retentionpolicy", "view")),
    ("Auditors", "audit:auditor-list", ("audit.auditevent", "grant_auditor")),
)


class AuditSection:
    """Adds the section's tabs (those the viewer may open) to every audit page."""

    tab: str = ""
    request: HttpRequest

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)  # type: ignore[misc]
        user = self.request.user
        # One look-up per distinct permission (several tabs share one).
        allowed: dict[tuple[str, str], bool] = {}
        for _, _, needed in TABS:
            if needed not in allowed:
                allowed[needed] = permissions.may(user, _model(needed[0]), needed[1])
        context["audit_tabs"] = [
            (label, reverse(url_name), url_name == self.tab)
            for label, url_name, needed in TABS
            if allowed[needed]
        ]
        return context


def _model(label: str) -> Any:
    from django.apps import apps

    return apps.get_model(label)


# --- events ----------------------------------------------------------------------------------


class AuditEventListView(AuditSection, ObjectListView):
    model = AuditEvent
    title = "Audit log"
    tab = "audit:event-list"
    table_class = AuditEventTable
    filterset_class = AuditEventFilterSet
    template_name = "audit/event_list.html"

    def get_queryset(self):
        # Narrowed to the viewer's tenants by ObjectListView.visible() (permissions.restrict).
        return AuditEvent.objects.all()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["may_export"] = self.may("audit.auditevent", "export")
        return context


class AuditEventDetailView(AuditSection, ConsoleView):
    permission = ("audit.auditevent", "view")
    tab = "audit:event-list"
    template_name = "audit/event_detail.html"

    def get(self, request: HttpRequest, sequence: int) -> HttpResponse:
        event = audit_event_get(user=request.user, sequence=sequence)
        if event is None:
            raise Http404
        tenants = tenant_names()
        return self.render(
            self.template_name,
            self.get_context_data(
                title=f"Event #{event.sequence}",
                object=event,
                integrity=audit_event_integrity(event),
                tenant=tenants.get(str(event.tenant_id)) if event.tenant_id else None,
            ),
        )


# --- jobs ------------------------------------------------------------------------------------


class JobStartView(AuditSection, FormView):
    """A form whose submission queues a background job, then shows the job's page."""

    kind: str = ""
    template_name = "audit/job_form.html"
    intro: str = ""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["jobs"] = job_list(user=self.request.user, kinds=[self.kind], limit=10)
        context["intro"] = self.intro
        return context

    def success(self, result: Job) -> HttpResponse:
        return hx_redirect(self.request, reverse("audit:job-detail", args=[result.pk]))


class VerifyView(JobStartView):
    title = "Verify the chain"
    tab = "audit:verify"
    permission = ("audit.auditevent", "verify")
    kind = job_kinds.VERIFY
    form_class = VerifyForm
    submit_label = "Verify now"
    template_name = "audit/verify.html"
    intro = (
        "Recomputes each event's hash, checks its signature and its link to the event "
        "before, and holds the chain's end to the latest signed head."
    )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["latest_head"] = AuditSignedHead.objects.order_by("-id").first()
        context["latest_verified"] = (
            AuditSignedHead.objects.filter(verified__isnull=False).order_by("-id").first()
        )
        return context

    def perform(self, form: VerifyForm) -> Job:
        user = self.request.user
        return job_start(
            kind=self.kind,
            parameters={"full": form.cleaned_data["full"]},
            user=user,
            tenant_ids=audit_tenant_ids(user=user, action="verify"),
            permissions=[(AuditEvent, "verify")],
        )


class ExportView(AuditSection, ConsoleView):
    """Export the events the list's filters select, as a background job."""

    title = "Export audit events"
    tab = "audit:export"
    permission = ("audit.auditevent", "export")
    template_name = "audit/export.html"

    def _forms(self, data: Any) -> tuple[AuditEventFilterSet, ExportForm]:
        scope = permissions.restrict(AuditEvent.objects.all(), self.request.user, "export")
        filterset = AuditEventFilterSet(
            data, queryset=scope, request=self.request, action_name="export"
        )
        return filterset, ExportForm(data if self.request.method == "POST" else None)

    def _page(self, filterset: Any, form: ExportForm, status: int = 200) -> HttpResponse:
        context = self.get_context_data(
            filterset=filterset,
            form=form,
            jobs=job_list(user=self.request.user, kinds=[job_kinds.EXPORT], limit=10),
        )
        return self.render(self.template_name, context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        filterset, form = self._forms(request.GET or None)
        if filterset.is_bound:
            filterset.is_valid()
        return self._page(filterset, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        filterset, form = self._forms(request.POST)
        if not (filterset.is_valid() and form.is_valid()):
            return self._page(filterset, form, status=422 if is_htmx(request) else 200)
        filters = filterset.filters_value()
        user = request.user
        allowed = audit_tenant_ids(user=user, action="export")
        tenants = [filters.tenant_id] if filters.tenant_id else allowed
        job = job_start(
            kind=job_kinds.EXPORT,
            parameters={"format": form.cleaned_data["format"], "filters": filters.as_dict()},
            user=user,
            tenant_ids=tenants,
            permissions=[(AuditEvent, "export")],
        )
        return hx_redirect(request, reverse("audit:job-detail", args=[job.pk]))


class ReportView(JobStartView):
    title = "Compliance reports"
    tab = "audit:report"
    permission = ("audit.auditevent", "report")
    kind = job_kinds.REPORT
    form_class = ReportForm
    submit_label = "Build the report"
    intro = (
        "Requests by classification and status, policy denials, redactions, budget events, "
        "administrative changes and access for a period, with the chain's verification."
    )

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"user": self.request.user}

    def perform(self, form: ReportForm) -> Job:
        data = form.cleaned_data
        tenant = data.get("tenant")
        return job_start(
            kind=self.kind,
            parameters={
                "tenant_id": str(tenant.pk) if tenant else None,
                "since": data["since_at"].isoformat(),
                "until": data["until_at"].isoformat(),
                "format": data["format"],
                "full": data["full"],
            },
            user=self.request.user,
            tenant_ids=[tenant.pk] if tenant else None,
            permissions=[(AuditEvent, "report")],
        )


class SubjectExportView(JobStartView):
    title = "Data-subject export"
    tab = "audit:subject-export"
    permission = ("audit.auditevent", "export_subject")
    kind = job_kinds.SUBJECT_EXPORT
    form_class = SubjectExportForm
    submit_label = "Export"
    intro = (
        "Everything a tenant holds about one person: their requests, stored exchanges, "
        "feedback and the audit events about them, as one JSON document."
    )

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"user": self.request.user, "action": "export_subject"}

    def perform(self, form: SubjectExportForm) -> Job:
        tenant: Tenant = form.cleaned_data["tenant"]
        bodies = form.cleaned_data["bodies"]
        if bodies and not subject_bodies_allowed(user=self.request.user, tenant=tenant):
            raise ValidationError({"bodies": "You may not read this tenant's stored bodies."})
        needs: list[tuple[Any, str]] = [(AuditEvent, "export_subject")]
        if bodies:
            needs.append((StoredExchange, "view_body"))
        return job_start(
            kind=self.kind,
            parameters={
                "tenant_id": str(tenant.pk),
                "subject": form.cleaned_data["subject"],
                "bodies": bodies,
            },
            user=self.request.user,
            tenant_ids=[tenant.pk],
            permissions=needs,
        )


class SubjectEraseView(AuditSection, FormView):
    """Erase a data subject: a first submission shows what will go, a second erases it."""

    title = "Erase a data subject"
    tab = "audit:subject-erase"
    permission = ("audit.auditevent", "erase_subject")
    form_class = SubjectEraseForm
    template_name = "audit/subject_erase.html"
    submit_label = "Review what will be erased"

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"user": self.request.user, "action": "erase_subject"}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.get_form(request.POST)
        if not form.is_valid():
            return self.render(self.template_name, self.get_context_data(form=form))
        tenant: Tenant = form.cleaned_data["tenant"]
        subject: str = form.cleaned_data["subject"]
        if not permissions.may_for_tenant(request.user, AuditEvent, "erase_subject", tenant.pk):
            raise PermissionDenied
        if form.cleaned_data.get("confirm") != subject:
            confirm = SubjectEraseForm(
                initial={"tenant": tenant.slug, "subject": subject, "confirm": subject},
                user=request.user,
                action="erase_subject",
            )
            context = self.get_context_data(
                form=confirm,
                confirming=True,
                tenant=tenant,
                subject=subject,
                holdings=subject_holdings(tenant=tenant, subject=subject),
            )
            return self.render("audit/subject_erase_confirm.html", context)
        result = subject_erase(tenant=tenant, subject=subject)
        messages.success(
            request,
            f"Erased at {tenant.slug}: {result['exchanges_deleted']} stored exchanges deleted, "
            f"{result['requests_anonymised']} requests anonymised, "
            f"{result['feedback_comments_erased']} feedback comments erased. "
            f"Tombstone {result['tombstone']}.",
        )
        return hx_redirect(request, reverse("audit:subject-erase"))


class JobDetailView(AuditSection, ConsoleView):
    """A job's progress (polled by htmx until it ends) and its result."""

    template_name = "audit/job_detail.html"

    def get(self, request: HttpRequest, pk: Any) -> HttpResponse:
        job = job_get(user=request.user, pk=pk)
        if job is None:
            raise Http404
        kind = KINDS.get(job.kind)
        context = self.get_context_data(
            title=kind.title if kind else job.kind,
            job=job,
            expired=bool(job.expires_at and job.expires_at < timezone.now()),
            downloadable=_downloadable(job),
        )
        if is_htmx(request) and request.htmx.target == "job-status":
            return self.render("audit/partials/job_status.html", context)
        return self.render(self.template_name, context)


def _downloadable(job: Job) -> bool:
    if job.status != Job.Status.SUCCEEDED:
        return False
    if job.expires_at and job.expires_at < timezone.now():
        return False
    return bool(job.result_file) or job.result is not None


class JobDownloadView(ConsoleView):
    """The job's result, for whoever may see the job (404 for anyone else)."""

    def get(self, request: HttpRequest, pk: Any) -> HttpResponse:
        job = job_get(user=request.user, pk=pk)
        if job is None or not _downloadable(job):
            raise Http404
        path = result_path(job)
        if path is not None:
            if not path.exists():
                raise Http404
            return FileResponse(
                open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
                as_attachment=True,
                filename=job.result_name,
                content_type=job.result_type or "application/octet-stream",
            )
        response = JsonResponse(job.result or {}, json_dumps_params={"indent": 1})
        response["Content-Disposition"] = f'attachment; filename="atp-{job.kind}-{job.pk}.json"'
        return response


# --- retention -------------------------------------------------------------------------------


class RetentionPolicyListView(AuditSection, ObjectListView):
    model = RetentionPolicy
    title = "Retention policies"
    tab = "audit:retentionpolicy-list"
    table_class = RetentionPolicyTable
    template_name = "audit/retention_list.html"
    add_action = (
        "audit:retentionpolicy-add",
        "Add a retention policy",
        ("audit.retentionpolicy", "add"),
    )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["audit_floor"] = audit_min_retention_days()
        return context


def _save_policy(policy: RetentionPolicy, form: RetentionPolicyForm, user: Any) -> RetentionPolicy:
    data = form.cleaned_data
    tenant = data.get("tenant")
    policy.tenant_id = tenant.pk if tenant else None
    policy.classification = data.get("classification") or ""
    policy.days = data["days"]
    try:
        return retention_policy_save(policy=policy, by=user)
    except PermissionDenied as exc:
        # The dedicated permission for audit classifications: said next to the field.
        raise ValidationError({"classification": str(exc)}) from exc


class RetentionPolicyAddView(AuditSection, FormView):
    title = "Add a retention policy"
    tab = "audit:retentionpolicy-list"
    permission = ("audit.retentionpolicy", "add")
    form_class = RetentionPolicyForm
    template_name = "audit/retention_form.html"
    submit_label = "Add policy"
    success_message = "Retention policy added."

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"user": self.request.user, "action": "add"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("audit:retentionpolicy-list")
        context["audit_floor"] = audit_min_retention_days()
        return context

    def perform(self, form: RetentionPolicyForm) -> RetentionPolicy:
        return _save_policy(RetentionPolicy(), form, self.request.user)

    def success(self, result: RetentionPolicy) -> HttpResponse:
        return hx_redirect(self.request, reverse("audit:retentionpolicy-list"))


class PermissionFirst:
    """403 for a user who may do this to no object at all, before the object's 404."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.request = request
        if request.user.is_authenticated and not self.has_permission():
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class RetentionPolicyEditView(PermissionFirst, AuditSection, ObjectFormView):
    model = RetentionPolicy
    tab = "audit:retentionpolicy-list"
    form_class = RetentionPolicyForm
    template_name = "audit/retention_form.html"
    submit_label = "Save"
    success_message = "Retention policy saved."

    def has_permission(self) -> bool:
        # 403 for who may change no policy at all; 404 for one outside their tenants.
        return self.may("audit.retentionpolicy", "change")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"user": self.request.user, "action": "change"}

    def get_form(self, data: Any = None) -> RetentionPolicyForm:
        policy = self.object
        initial = {
            "tenant": Tenant.objects.filter(pk=policy.tenant_id)
            .values_list("slug", flat=True)
            .first()
            if policy.tenant_id
            else None,
            "classification": policy.classification,
            "days": policy.days,
        }
        return RetentionPolicyForm(data, initial=initial, **self.get_form_kwargs())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["title"] = f"Retention policy: {self.object}"
        context["cancel_url"] = reverse("audit:retentionpolicy-list")
        context["audit_floor"] = audit_min_retention_days()
        context["may_delete"] = permissions.may_on(self.request.user, self.object, "delete")
        return context

    def perform(self, form: RetentionPolicyForm) -> RetentionPolicy:
        return _save_policy(self.object, form, self.request.user)

    def success(self, result: RetentionPolicy) -> HttpResponse:
        return hx_redirect(self.request, reverse("audit:retentionpolicy-list"))


class RetentionPolicyDeleteView(PermissionFirst, AuditSection, ObjectActionView):
    model = RetentionPolicy
    object_action = "delete"
    verb = "Delete"
    question = "Delete this retention policy?"
    consequence = (
        "Records it covered fall back to the next policy that matches, or to the default "
        "retention; the next daily purge applies it."
    )
    success_message = "Retention policy deleted."

    def has_permission(self) -> bool:
        return self.may("audit.retentionpolicy", "delete")

    def perform(self, obj: RetentionPolicy) -> None:
        retention_policy_delete(policy=obj, by=self.request.user)

    def success(self, result: Any) -> HttpResponse:
        return hx_redirect(self.request, reverse("audit:retentionpolicy-list"))


# --- auditor grants --------------------------------------------------------------------------


class AuditorListView(AuditSection, FormView):
    """Who may read which tenants' audit trail; grant per-tenant access (audited)."""

    title = "Auditor access"
    tab = "audit:auditor-list"
    permission = ("audit.auditevent", "grant_auditor")
    form_class = AuditorGrantForm
    template_name = "audit/auditor_list.html"
    submit_label = "Grant audit access"

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"user": self.request.user}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["grants"] = auditor_grants()
        context["form_action"] = reverse("audit:auditor-list")
        return context

    def perform(self, form: AuditorGrantForm) -> list[str]:
        bodies = bool(form.cleaned_data.get("bodies"))
        if bodies and not self.request.user.is_superuser:
            raise PermissionDenied
        granted = auditor_grant(
            user=form.cleaned_data["user"], tenant=form.cleaned_data["tenant"], bodies=bodies
        )
        messages.success(
            self.request,
            f"{form.cleaned_data['user'].get_username()} may now read the audit trail of "
            f"{form.cleaned_data['tenant'].slug} ({', '.join(granted)}).",
        )
        return granted

    def success(self, result: Any) -> HttpResponse:
        return hx_redirect(self.request, reverse("audit:auditor-list"))


class AuditorRevokeView(AuditSection, ConsoleView):
    """Take back one user's audit access to one tenant, after a confirmation."""

    title = "Revoke audit access"
    tab = "audit:auditor-list"
    permission = ("audit.auditevent", "grant_auditor")

    def _target(self, request: HttpRequest, pk: int, tenant: str) -> tuple[Any, Tenant]:
        user = get_object_or_404(get_user_model(), pk=pk)
        return user, get_object_or_404(Tenant, slug=tenant)

    def get(self, request: HttpRequest, pk: int, tenant: str) -> HttpResponse:
        user, target = self._target(request, pk, tenant)
        context = self.get_context_data(user_target=user, tenant=target)
        template = (
            "audit/partials/auditor_revoke.html"
            if is_htmx(request)
            else "audit/auditor_revoke.html"
        )
        return self.render(template, context)

    def post(self, request: HttpRequest, pk: int, tenant: str) -> HttpResponse:
        user, target = self._target(request, pk, tenant)
        auditor_revoke(user=user, tenant=target)
        messages.success(
            request, f"{user.get_username()} no longer reads the audit trail of {target.slug}."
        )
        return hx_redirect(request, reverse("audit:auditor-list"))


# --- periodic jobs -----------------------------------------------------------------------------


class ScheduledRunListView(ObjectListView):
    """Operations: each periodic job of the beat schedule with its latest run, and its runs.

    Platform-wide (not a tenant's): global holders of audit.view_scheduledrun only."""

    model = ScheduledRun
    title = "Scheduled jobs"
    table_class = ScheduledRunTable
    filterset_class = ScheduledRunFilterSet
    template_name = "audit/scheduledrun_list.html"

    def get_queryset(self):
        return run_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if not (is_htmx(self.request) and self.request.htmx.target == "console-table"):
            context["duties"] = duty_list()
        return context
