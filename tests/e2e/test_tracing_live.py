"""OpenTelemetry traces of a live server exported by OTLP/HTTP to a collector on 127.0.0.1:
one trace per request continuing the caller's traceparent, with the pipeline's steps and
each upstream attempt (GenAI semantic conventions) inside it."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from websockets.sync.client import connect

pytestmark = pytest.mark.live

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Collector:
    """An OTLP/HTTP trace receiver keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    service = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }.get("service.name")
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            collector.spans.append((service, span))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attributes(span) -> dict:
    out = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = value.string_value if value.HasField("string_value") else value.int_value
    return out


def test_a_request_is_one_trace_with_its_steps_and_upstream_attempt(live):
    collector = Collector()
    try:
        server = live.start_server(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_SERVICE_NAME="atp-test",
            OTEL_BSP_SCHEDULE_DELAY="100",
            ATP_LOG_FORMAT="json",
        )
        live.extra_servers.append(server)
        resp = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {live.key}",
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
            },
            json={"model": "team/sim", "messages": [{"role": "user", "content": "hello"}]},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        url = server.base_url.replace("http://", "ws://") + "/v1/realtime"
        with connect(url, additional_headers={"Authorization": f"Bearer {live.key}"}) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send(
                json.dumps(
                    {
                        "type": "request",
                        "id": "one",
                        "body": {
                            "model": "sim-fast",
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                    }
                )
            )
            while (message := json.loads(ws.recv(timeout=10)))["type"] != "done":
                assert message["type"] == "chunk", message
        socket_request_id = message["request_id"]
        deadline = time.monotonic() + 15
        names: set[str] = set()
        while time.monotonic() < deadline:
            names = {span.name for _, span in collector.spans}
            if "atp.writebehind.write" in names and "WEBSOCKET /v1/realtime" in names:
                break
            time.sleep(0.1)
        server.stop()
    finally:
        collector.close()

    ours = [(s, span) for s, span in collector.spans if span.trace_id.hex() == TRACE_ID]
    assert {service for service, _ in ours} == {"atp-test"}
    by_name = {span.name: span for _, span in ours}
    root = by_name["POST /v1/chat/completions"]
    assert root.parent_span_id.hex() == PARENT_ID and root.kind == root.SPAN_KIND_SERVER
    root_attrs = _attributes(root)
    assert root_attrs["http.response.status_code"] == 200
    assert root_attrs["atp.tenant"] == "live" and root_attrs["atp.route"] == "team/sim"
    assert root_attrs["atp.request_id"] == resp.headers["x-request-id"]
    for step in ("atp.authenticate", "atp.policy", "atp.route", "atp.cache"):
        assert by_name[step].parent_span_id == root.span_id, step
    (attempt,) = [span for name, span in by_name.items() if name.startswith("chat ")]
    assert attempt.parent_span_id == root.span_id and attempt.kind == attempt.SPAN_KIND_CLIENT
    attrs = _attributes(attempt)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] and attrs["gen_ai.request.model"]
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attempt.start_time_unix_nano >= root.start_time_unix_nano
    assert attempt.end_time_unix_nano <= root.end_time_unix_nano
    # A request on the WebSocket is a trace of its own with the same steps inside.
    (socket_root,) = [span for _, span in collector.spans if span.name == "WEBSOCKET /v1/realtime"]
    assert _attributes(socket_root)["atp.request_id"] == socket_request_id
    inside = {
        span.name
        for _, span in collector.spans
        if span.trace_id == socket_root.trace_id and span.parent_span_id == socket_root.span_id
    }
    assert {"atp.authenticate", "atp.policy", "atp.route"} <= inside
    assert any(name.startswith("chat ") for name in inside)
    # Records are written in traces of their own.
    assert any(span.name == "atp.writebehind.write" for _, span in collector.spans)
    # The logs carry this trace's id.
    assert f'"trace_id": "{TRACE_ID}"' in server.log()
    # No key in any span.
    for _, span in collector.spans:
        assert live.key not in str(_attributes(span))
