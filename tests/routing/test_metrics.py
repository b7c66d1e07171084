"""GET /metrics: Prometheus text with requests, breakers and cache figures; access rules."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.routing.resilience.breaker import get_breakers
from apps.routing.writebehind import request_logs
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)


async def test_metrics_count_requests_and_show_breakers(gateway, settings):
    from asgiref.sync import sync_to_async

    settings.ATP_METRICS_TOKEN = ""
    body = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hi"}]}
    resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=body)
    assert resp.status == 200
    request_logs._take()
    dep_id = str(gateway.deployment.id)
    await get_breakers().record(dep_id, ok=False)

    page = await sync_to_async(Client().get)("/metrics")
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        'atp_requests_total{endpoint="chat.completions",model="sim-fast",route="",status="success"}'
        in text
    )
    assert 'atp_input_tokens_total{model="sim-fast",route=""}' in text
    assert (
        f'atp_circuit_state{{deployment="{dep_id}",model="sim-fast",provider="sim",state="closed"}} 1.0'
        in text
    )
    assert "atp_upstream_latency_ewma_ms" in text


def test_metrics_access(settings):
    settings.ATP_METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403
    assert Client().get("/metrics").status_code == 200  # loopback
    settings.ATP_METRICS_TOKEN = "scrape-secret"
    missing = Client().get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    ok = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401


@pytest.mark.parametrize("token", ["sécret", "scrape-secret\u00e9", "\u2603", "\udcff"])
def test_a_non_ascii_metrics_token_is_refused_with_401(settings, token):
    settings.ATP_METRICS_TOKEN = "scrape-secret"
    resp = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert resp.status_code == 401


def _row(**extra):
    row = {
        "endpoint": "chat.completions",
        "route": "team/chat",
        "model": "m1",
        "status": "success",
        "input_tokens": 3,
        "output_tokens": 4,
        "cost_usd": "0.001",
        "latency_ms": 40,
        "ttft_ms": None,
        "decision": None,
    }
    return {**row, **extra}


def test_latency_and_first_token_histograms_and_failed_attempts(monkeypatch):
    from atp_site import metrics

    for name in ("durations", "first_tokens"):
        monkeypatch.setattr(metrics, name, {})
    for name in ("requests", "tokens_in", "tokens_out", "cost_usd", "failed_attempts", "fallbacks"):
        monkeypatch.setattr(metrics, name, metrics.Counter())
    metrics.observe(_row(latency_ms=40))
    metrics.observe(_row(latency_ms=50, ttft_ms=12))  # 0.05 s falls in the 0.05 bucket
    attempts = [
        {"deployment": "m0", "provider": "openai", "status": 503, "try": 1},
        {"deployment": "m0", "provider": "openai", "skipped": "circuit_open"},
    ]
    metrics.observe(_row(latency_ms=3000, decision={"strategy": "x", "attempts": attempts}))
    text = Client().get("/metrics").content.decode()
    labels = 'endpoint="chat.completions",model="m1",route="team/chat"'
    assert (
        'atp_request_duration_seconds_bucket{endpoint="chat.completions",le="0.025",model="m1",route="team/chat"} 0.0'
        in text
    )
    assert (
        'atp_request_duration_seconds_bucket{endpoint="chat.completions",le="0.05",model="m1",route="team/chat"} 2.0'
        in text
    )
    assert (
        'atp_request_duration_seconds_bucket{endpoint="chat.completions",le="2.5",model="m1",route="team/chat"} 2.0'
        in text
    )
    assert (
        'atp_request_duration_seconds_bucket{endpoint="chat.completions",le="5.0",model="m1",route="team/chat"} 3.0'
        in text
    )
    assert (
        'atp_request_duration_seconds_bucket{endpoint="chat.completions",le="+Inf",model="m1",route="team/chat"} 3.0'
        in text
    )
    assert f"atp_request_duration_seconds_count{{{labels}}} 3.0" in text
    assert f"atp_request_duration_seconds_sum{{{labels}}} 3.09" in text
    assert (
        'atp_time_to_first_token_seconds_bucket{endpoint="chat.completions",le="0.025",model="m1",route="team/chat"} 1.0'
        in text
    )
    assert f"atp_time_to_first_token_seconds_count{{{labels}}} 1.0" in text
    assert (
        'atp_upstream_failed_attempts_total{model="m0",provider="openai",status="503"} 1.0' in text
    )
    assert (
        'atp_upstream_failed_attempts_total{model="m0",provider="openai",status="circuit_open"} 1.0'
        in text
    )
    assert 'atp_fallbacks_total{model="m1",route="team/chat"} 1.0' in text


def test_one_scrape_answers_for_every_worker_of_the_instance(tmp_path, settings, monkeypatch):
    """Counters and histograms of every worker's file are summed (a stopped worker's
    too); gauges come from running workers, summed or the largest for shared figures."""
    import os
    import subprocess
    import sys

    import orjson

    from atp_site import metrics

    for name in ("durations", "first_tokens"):
        monkeypatch.setattr(metrics, name, {})
    for name in ("requests", "tokens_in", "tokens_out", "cost_usd", "failed_attempts", "fallbacks"):
        monkeypatch.setattr(metrics, name, metrics.Counter())
    settings.ATP_METRICS_TOKEN = ""
    settings.ATP_METRICS_DIR = str(tmp_path)
    metrics.observe(_row())
    own = metrics._families()

    def scaled(families, factor):
        out = []
        for name, kind, doc, samples in families:
            out.append([name, kind, doc, [[n, lab, v * factor] for n, lab, v in samples]])
        return out

    def gauge(name, value, labels=None):
        return [name, "gauge", "g", [[name, labels or {}, value]]]

    stopped = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(stopped.stdout)
    running_pid = os.getppid()
    files = {
        running_pid: scaled(own, 2)
        + [gauge("atp_in_flight", 5), gauge("atp_circuit_failure_rate", 0.5, {"deployment": "d"})],
        dead_pid: scaled(own, 3)
        + [gauge("atp_in_flight", 7), gauge("atp_circuit_failure_rate", 0.9, {"deployment": "d"})],
    }
    for pid, families in files.items():
        (tmp_path / f"{pid}.json").write_bytes(orjson.dumps({"pid": pid, "families": families}))
    (tmp_path / "junk.json").write_text("{not json")
    monkeypatch.setattr(metrics, "_breakers", lambda: iter(()))

    text = Client().get("/metrics").content.decode()
    # 1 (this process) + 2 (a running worker) + 3 (a stopped one).
    assert (
        'atp_requests_total{endpoint="chat.completions",model="m1",route="team/chat",'
        'status="success"} 6.0' in text
    )
    assert 'atp_input_tokens_total{model="m1",route="team/chat"} 18.0' in text
    assert (
        'atp_request_duration_seconds_bucket{endpoint="chat.completions",le="0.05",model="m1",route="team/chat"} 6.0'
        in text
    )
    # Gauges: this process's 0 plus the running worker's 5; the stopped worker's left out.
    assert "atp_in_flight 5.0" in text
    assert 'atp_circuit_failure_rate{deployment="d"} 0.5' in text

    # Without the directory setting, the page is this process's alone.
    settings.ATP_METRICS_DIR = ""
    alone = Client().get("/metrics").content.decode()
    assert (
        'atp_requests_total{endpoint="chat.completions",model="m1",route="team/chat",'
        'status="success"} 1.0' in alone
    )


def test_a_worker_writes_its_figures_atomically(tmp_path):
    import os

    import orjson

    from atp_site import metrics

    metrics.write_process_file(tmp_path / "metrics")
    (path,) = (tmp_path / "metrics").iterdir()
    assert path.name == f"{os.getpid()}.json"
    data = orjson.loads(path.read_bytes())
    assert data["pid"] == os.getpid()
    assert "atp_requests" in {family[0] for family in data["families"]}
