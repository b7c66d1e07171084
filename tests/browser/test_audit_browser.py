"""The audit pages in a real browser: an auditor verifies the chain and downloads a compliance
report; every audit page is photographed (both themes, desktop and phone) and checked with axe.

Background jobs run in the live server's process when it has no Redis (Celery eager); with
REDIS_URL set, a real Celery worker is started for these tests on the live server's
settings, so the page shows the job queued, running with progress, then done.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import check_accessibility, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job_worker(console):
    """A Celery worker for the live server when it queues jobs on Redis (else nothing)."""
    env = dict(console.env)
    if not env.get("REDIS_URL") or env.get("ATP_CELERY_EAGER", "").lower() == "true":
        yield None
        return
    log = open(Path(env["ATP_DATA_DIR"]) / "celery-worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "atp_site",
            "worker",
            "-P",
            "solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


def _wait_for_job(page, timeout: int = 120_000) -> str:
    """Wait on a job page until the polled status says it ended; returns the status."""
    page.wait_for_selector(
        "#job-status[data-status=succeeded], #job-status[data-status=failed]", timeout=timeout
    )
    return page.locator("#job-status").get_attribute("data-status")


def test_auditor_verifies_the_chain_and_downloads_a_compliance_report(signed_in_page, job_worker):
    page = signed_in_page("auditor", path="/audit/")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    assert page.csp_errors == []

    page.get_by_role("link", name="Verify", exact=True).click()
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url(re.compile(r"/audit/jobs/[0-9a-f-]+/$"))
    expect(page.locator("progress.job-progress")).to_be_visible()
    assert _wait_for_job(page) == "succeeded"
    status = page.locator("#job-status")
    assert "Chain OK" in status.inner_text()
    assert page.locator("progress.job-progress").get_attribute("value") == "100"
    # Polling stopped with the job: the status no longer asks to be refreshed.
    assert status.get_attribute("hx-trigger") is None
    check_accessibility(page)
    screenshot(page, "audit-job-verified")

    page.get_by_role("link", name="Reports", exact=True).click()
    page.get_by_label("Format").select_option("pdf")
    page.get_by_role("button", name="Build the report").click()
    page.wait_for_url(re.compile(r"/audit/jobs/[0-9a-f-]+/$"))
    assert _wait_for_job(page) == "succeeded"
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"^Download")).click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".pdf")
    assert Path(path).read_bytes()[:4] == b"%PDF"
    assert page.csp_errors == []


AUDIT_PAGES = (
    ("events", "/audit/"),
    ("events-filtered", "/audit/?outcome=success"),
    ("verify", "/audit/verify/"),
    ("export", "/audit/export/"),
    ("reports", "/audit/reports/"),
    ("subjects", "/audit/subjects/"),
    ("erase", "/audit/subjects/erase/"),
    ("retention", "/audit/retention/"),
    ("retention-add", "/audit/retention/add/"),
    ("auditors", "/audit/auditors/"),
)


def test_every_audit_page_is_photographed_and_accessible(signed_in_page, job_worker):
    page = signed_in_page("superuser", path="/audit/")
    for name, path in AUDIT_PAGES:
        page.goto(path)
        expect(page.locator("h1").first).to_be_visible()
        check_accessibility(page)
        screenshot(page, f"audit-{name}")

    page.goto("/audit/")
    page.locator("table.table tbody tr a").first.click()
    page.wait_for_url(re.compile(r"/audit/events/\d+/$"))
    expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "audit-event")

    # A retention error shows next to its field.
    page.goto("/audit/retention/add/")
    page.get_by_label("Classification").select_option("internal")
    page.get_by_label("Keep for (days)").fill("3")
    page.get_by_role("button", name="Add policy").click()
    error = page.locator(".field.has-error .field-error").first
    error.wait_for()
    assert "ATP_AUDIT_MIN_RETENTION_DAYS" in error.inner_text()
    check_accessibility(page)
    screenshot(page, "audit-retention-error")

    # The erase confirmation names what will go.
    page.goto("/audit/subjects/erase/")
    page.get_by_label("Subject id").fill("someone-42")
    page.get_by_role("button", name="Review what will be erased").click()
    page.get_by_role("heading", name=re.compile("Erase someone-42")).wait_for()
    check_accessibility(page)
    screenshot(page, "audit-erase-confirm")

    page.goto("/audit/export/")
    page.get_by_role("button", name="Start the export").click()
    page.wait_for_url(re.compile(r"/audit/jobs/[0-9a-f-]+/$"))
    assert _wait_for_job(page) == "succeeded"
    check_accessibility(page)
    screenshot(page, "audit-job-export")
    assert page.csp_errors == []
