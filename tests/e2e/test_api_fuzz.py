"""A property-based fuzzer (Schemathesis) against the management API of a live server.

The schema is loaded from the server itself, as a generated client would, and every
operation gets at least 25 generated requests (valid and invalid, with a fixed seed and
derandomized, so a run is repeatable). The test requires zero 5xx, only documented status
codes, and every response matching its documented content type and body schema.

Writes are real: the server and its database are this test's own. The superuser's admin
token may be revoked by a generated request (its id is in the token list); the test then
mints a fresh one and goes on.

Run alone: `.venv/bin/python -m pytest tests/e2e/test_api_fuzz.py -q` (embedded), or with
DATABASE_URL and REDIS_URL set for PostgreSQL and Redis. `ATP_FUZZ_TESTS=0` skips it (CI runs
it in the PostgreSQL run only: the API's validation is the same code on both databases, and
PostgreSQL is the stricter of the two).
"""

from __future__ import annotations

import os
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import strategies as st

from tests.e2e.conftest import (
    LiveDatabase,
    LiveServer,
    make_database,
    run_manage,
    start_server,
    throwaway_secrets,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("ATP_FUZZ_TESTS", "").strip() == "0",
        reason="the API fuzzer is turned off (ATP_FUZZ_TESTS=0)",
    ),
]

SEED = 20240610
MAX_EXAMPLES = 25
USER = "fuzz-admin"
TENANT_KEYS = [f"atp_fuzz-tenant-key-{i}-Qm4Zr8Lp2Vx7Nc5Tb9Hd" for i in range(3)]

# What a response must satisfy. Acceptance of schema-valid data and rejection of
# schema-invalid data are left out: the schema cannot say that a tenant must exist, and form
# encodings carry every value as a string.
CHECKS = {
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "ignored_auth": {"enabled": True},
    "unsupported_method": {"enabled": True},
    "positive_data_acceptance": {"enabled": False},
    "negative_data_rejection": {"enabled": False},
    "missing_required_header": {"enabled": False},
    "use_after_free": {"enabled": False},
    "ensure_resource_availability": {"enabled": False},
}

CHAT = ["chat", "streaming"]
CONFIG = {
    "version": 1,
    "providers": [
        {
            "name": name,
            "kind": "simulator",
            "models": [
                {"name": f"{name}-a", "upstream": "sim-fast", "capabilities": CHAT},
                {"name": f"{name}-b", "upstream": "sim-cheap", "capabilities": CHAT},
            ],
        }
        for name in ("sim", "sim-two", "sim-three")
    ],
    "routes": [
        {"name": f"team/r{i}", "strategy": "cheapest", "candidates": ["sim-a", "sim-two-a"]}
        for i in range(3)
    ],
    "tenants": [
        {
            "slug": f"fuzz-{i}",
            "name": f"Fuzzed tenant {i}",
            "store_bodies": True,
            "api_keys": [
                {"name": "first", "key": f"env:FUZZ_KEY_{i}"},
                {"name": "second"},
            ],
        }
        for i in range(3)
    ],
    "retention": [
        {"classification": "requests", "days": 90},
        {"classification": "bodies", "days": 30},
        {"tenant": "fuzz-1", "classification": "bodies", "days": 7},
    ],
}

# A path's collection and the request body fields naming an object of another one.
COLLECTIONS = {
    "admin-tokens",
    "api-keys",
    "audit",
    "deployments",
    "exchanges",
    "providers",
    "retention-policies",
    "routes",
    "tenants",
    "users",
}
REFERENCES = {"tenant": "tenants", "tenant_id": "tenants", "provider": "providers"}


@dataclass
class FuzzTarget:
    """The live server, how to mint its superuser a token, and ids of its real objects."""

    server: LiveServer
    db: LiveDatabase
    env: dict[str, str]
    token: str = ""
    ids: dict[str, list[Any]] = field(default_factory=dict)

    def renew_token(self) -> None:
        self.token = run_manage(self.env, "atp_admin_token", "--user", USER).stdout.strip()

    def renew_token_if_revoked(self) -> None:
        # A generated request may have revoked the token in use (its id is in the list).
        if self.get("/api/v1/admin-tokens/").status_code == 401:
            self.renew_token()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.server.base_url}{path}", headers=self.headers(), timeout=30)

    def collect_ids(self) -> None:
        for collection in COLLECTIONS:
            page = self.get(f"/api/v1/{collection}/?limit=100")
            assert page.status_code == 200, page.text
            key = "sequence" if collection == "audit" else "id"
            # Not the token in use (`cli`, from atp_admin_token): revoking it is no test.
            rows = [row for row in page.json()["results"] if row.get("name") != "cli"]
            self.ids[collection] = [str(row[key]) for row in rows]


def collection_of(path: str) -> str:
    """`tenants` for /api/v1/tenants/{id}/."""
    return path.removeprefix("/api/v1/").split("/")[0]


def looks_like_id(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return str(value).isdigit()
    return True


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory) -> Iterator[FuzzTarget]:
    data_dir: Path = tmp_path_factory.mktemp("atp-fuzz")
    db = make_database(data_dir)
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(db.env())
    env.update(throwaway_secrets(data_dir))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "ATP_DATA_DIR": str(data_dir),
            "ATP_LOCAL_BEAT": "false",
            "ATP_WRITE_BEHIND_INTERVAL": "0.1",
            "ATP_REDIS_PREFIX": f"atp-fuzz-{uuid.uuid4().hex[:8]}",
            "DJANGO_SUPERUSER_PASSWORD": uuid.uuid4().hex,
            **{f"FUZZ_KEY_{i}": key for i, key in enumerate(TENANT_KEYS)},
        }
    )
    config_path = data_dir / "atp.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    server = None
    try:
        run_manage(env, "migrate", "--noinput")
        run_manage(
            env, "createsuperuser", "--noinput", "--username", USER, "--email", "f@example.com"
        )
        run_manage(env, "atp_apply", str(config_path))
        server = start_server(env, data_dir)
        target = FuzzTarget(server, db, env)
        target.renew_token()
        # A second token of the user, and a stored exchange per tenant, so the fuzzer finds
        # real objects of every kind.
        made = httpx.post(
            f"{server.base_url}/api/v1/admin-tokens/",
            headers=target.headers(),
            json={"name": "second"},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        for key in TENANT_KEYS:
            reply = httpx.post(
                f"{server.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "sim-a", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
        deadline = time.monotonic() + 10
        while len(target.get("/api/v1/exchanges/").json()["results"]) < len(TENANT_KEYS):
            assert time.monotonic() < deadline, "the stored exchanges were not written"
            time.sleep(0.05)
        target.collect_ids()
        yield target
    finally:
        if server is not None:
            server.stop()
        db.drop()


# Statuses answered, by operation; operations that failed a check.
CALLS: dict[str, list[int]] = {}
FAILED: set[str] = set()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> Iterator[Any]:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["all"],
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "no-shrink": True,
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": CHECKS,
            "request-timeout": 30,
        }
    )
    loaded = schemathesis.openapi.from_url(
        f"{fuzz_target.server.base_url}/api/v1/schema/?format=json",
        config=config,
        headers=fuzz_target.headers(),
        timeout=60,
    )
    ids = fuzz_target.ids

    # Random ids find nothing: mix in the ids of real objects, in paths and in the fields
    # naming another object, so updates, deletes and creates reach the services.
    @loaded.hook("before_generate_path_parameters")
    def real_objects(context, strategy):
        known = ids.get(collection_of(context.operation.path))
        names = [p.name for p in context.operation.path_parameters]
        if not known or len(names) != 1:
            return strategy
        return st.one_of(strategy, st.sampled_from(known).map(lambda v: {names[0]: str(v)}))

    def with_references(values: Any) -> st.SearchStrategy:
        fields = [f for f in REFERENCES if isinstance(values, dict) and f in values]
        if not fields:
            return st.just(values)
        real = st.fixed_dictionaries({f: st.sampled_from(ids[REFERENCES[f]]) for f in fields})
        return st.one_of(st.just(values), real.map(lambda refs: {**values, **refs}))

    @loaded.hook("before_generate_body")
    def real_references(context, strategy):
        return strategy.flatmap(with_references)

    @loaded.hook("before_generate_query")
    def real_filters(context, strategy):
        return strategy.flatmap(with_references)

    @loaded.hook("map_case")
    def real_objects_in_coverage(context, case):
        # The coverage phase (boundary and malformed values of each parameter in turn)
        # takes no generation hook: give its well-formed ids real objects, picked by a
        # digest of the case, so the run stays repeatable.
        if case.meta is None or case.meta.phase.name != "coverage":
            return case
        pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
        known = ids.get(collection_of(case.operation.path))
        if known and case.path_parameters and len(case.path_parameters) == 1:
            name, value = next(iter(case.path_parameters.items()))
            if looks_like_id(value):
                case.path_parameters[name] = known[pick % len(known)]
        for values in (case.body, case.query):
            for name, collection in REFERENCES.items():
                if isinstance(values, dict) and looks_like_id(values.get(name)):
                    values[name] = ids[collection][pick % len(ids[collection])]
        return case

    yield loaded
    if CALLS:
        # However the generation went, every operation got its share of requests.
        short = {
            op.label: len(CALLS.get(op.label, []))
            for op in (result.ok() for result in loaded.get_all_operations())
            if len(CALLS.get(op.label, [])) < MAX_EXAMPLES and op.label not in FAILED
        }
        assert not short, f"operations fuzzed fewer than {MAX_EXAMPLES} times: {short}"
        # Nothing answered with a 4xx only by the exception handler's last resort (a value
        # the database refused that validation should have named), nothing crashed.
        log = fuzz_target.server.log()
        assert "Traceback" not in log, log[-5000:]


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request):
    # schemathesis 4.32's lazy schemas read `_nodeid`, which pytest 9.2 items no longer have.
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_the_management_api_survives_a_fuzzer(case, fuzz_target: FuzzTarget):
    base_url, headers = fuzz_target.server.base_url, fuzz_target.headers()
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    CALLS.setdefault(case.operation.label, []).append(response.status_code)
    if response.status_code == 401:
        fuzz_target.renew_token_if_revoked()
    try:
        case.validate_response(
            response, headers=headers, transport_kwargs={"base_url": base_url, "headers": headers}
        )
    except BaseException:  # schemathesis' FailureGroup is a BaseExceptionGroup
        # An operation stops at its first failure: its count says nothing then.
        FAILED.add(case.operation.label)
        raise
