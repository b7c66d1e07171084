"""atpctl against a live server: contexts, every command family, every output format, the
errors (one line, a documented exit status), apply and export through the API, completion."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli.conftest import ACME_KEY

pytestmark = pytest.mark.live

USAGE, REFUSED, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, UNAVAILABLE, CHECK_FAILED = (
    2,
    1,
    3,
    4,
    5,
    6,
    7,
)


def one_line_error(result, code: int) -> str:
    """The failure's single stderr line, once its exit status is `code`."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("atpctl: "), result.err
    return lines[0]


def models_of(base_url: str, key: str, expect: int) -> int:
    """GET /v1/models with `key` until it answers `expect` (the gateway sees a key change
    within its snapshot check interval) or five seconds pass; the last status."""
    deadline = time.monotonic() + 5
    while True:
        status = httpx.get(
            f"{base_url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).status_code
        if status == expect or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


# --- contexts --------------------------------------------------------------------------------


def test_contexts_are_kept_private_with_tokens_masked(atpctl, cli_server):
    token = cli_server.token
    first = atpctl(
        "config", "set-context", "live", "--server", cli_server.base_url + "/", "--token", token
    )
    assert first.code == 0, first.err
    second = atpctl(
        "config", "set-context", "other", "--server", "http://127.0.0.1:9", "--token", "atpadm_x"
    )
    assert second.code == 0, second.err
    config = Path(atpctl.config)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = yaml.safe_load(config.read_text())
    # The first context made is the current one; the server is kept without a trailing slash.
    assert saved["current-context"] == "live"
    assert saved["contexts"]["live"] == {"server": cli_server.base_url, "token": token}

    listed = atpctl("config", "get-contexts")
    assert listed.code == 0
    assert token not in listed.out and token[:11] in listed.out
    header, live_row, other_row = listed.out.splitlines()
    assert header.split() == ["CURRENT", "NAME", "SERVER", "TOKEN"]
    assert live_row.split()[:3] == ["*", "live", cli_server.base_url]
    as_json = json.loads(atpctl("config", "get-contexts", "-o", "json").out)
    assert [c["name"] for c in as_json] == ["live", "other"]
    assert all(token not in c["token"] for c in as_json)

    assert atpctl("config", "current-context").out.strip() == "live"
    assert atpctl("providers", "list").code == 0
    # Another context, chosen for one command or made current.
    refused = atpctl("--context", "other", "providers", "list")
    assert "cannot reach http://127.0.0.1:9" in one_line_error(refused, UNAVAILABLE)
    assert atpctl("config", "use-context", "other").code == 0
    assert atpctl("config", "current-context").out.strip() == "other"
    assert atpctl("--context", "live", "providers", "list").code == 0
    assert atpctl("config", "delete-context", "other").code == 0
    one_line_error(atpctl("config", "current-context"), USAGE)
    missing = atpctl("config", "use-context", "nowhere")
    assert "no context named 'nowhere'" in one_line_error(missing, USAGE)


def test_the_environment_and_flags_override_the_contexts_file(atpctl, cli_server):
    nothing = atpctl("providers", "list")
    assert "no server" in one_line_error(nothing, USAGE)
    by_env = atpctl(
        "providers",
        "list",
        "-o",
        "json",
        env={"ATP_SERVER": cli_server.base_url, "ATP_TOKEN": cli_server.token},
    )
    assert by_env.code == 0, by_env.err
    assert {p["name"] for p in json.loads(by_env.out)} == {"sim", "dead"}
    by_flag = atpctl(
        "--server",
        cli_server.base_url,
        "providers",
        "list",
        env={"ATP_TOKEN": cli_server.token},
    )
    assert by_flag.code == 0, by_flag.err
    # XDG_CONFIG_HOME is where the file is when ATPCTL_CONFIG is unset.
    xdg = Path(atpctl.config).parent.parent / "xdg"
    made = atpctl(
        "config",
        "set-context",
        "x",
        "--server",
        cli_server.base_url,
        env={"ATPCTL_CONFIG": "", "XDG_CONFIG_HOME": str(xdg)},
    )
    assert made.code == 0, made.err
    assert (xdg / "atpctl" / "config.yaml").is_file()


# --- errors ------------------------------------------------------------------------------------


def test_a_wrong_token_is_one_line_and_exit_3(atpctl, cli_server):
    result = atpctl(
        "providers",
        "list",
        env={"ATP_SERVER": cli_server.base_url, "ATP_TOKEN": "atpadm_not-a-real-token-000000000"},
    )
    line = one_line_error(result, UNAUTHENTICATED)
    assert line == "atpctl: not authenticated (401): Invalid, expired or revoked admin token."
    assert result.out == ""


def test_a_user_without_permission_gets_exit_4(atpctl, cli_server):
    result = atpctl(
        "providers",
        "list",
        env={"ATP_SERVER": cli_server.base_url, "ATP_TOKEN": cli_server.nobody_token},
    )
    assert "permission denied (403)" in one_line_error(result, FORBIDDEN)
    # Applying the configuration is for superusers only.
    applied = atpctl(
        "apply",
        "-f",
        "-",
        input="version: 1\n",
        env={"ATP_SERVER": cli_server.base_url, "ATP_TOKEN": cli_server.nobody_token},
    )
    one_line_error(applied, FORBIDDEN)


def test_what_does_not_exist_is_exit_5(logged_in):
    assert "no provider named 'nope'" in one_line_error(
        logged_in("providers", "disable", "nope"), NOT_FOUND
    )
    by_id = logged_in("providers", "get", "00000000-0000-0000-0000-000000000000")
    assert "not found (404)" in one_line_error(by_id, NOT_FOUND)
    assert "no live key" in one_line_error(logged_in("keys", "revoke", "acme/nope"), NOT_FOUND)


def test_usage_errors_are_one_line_and_exit_2(logged_in):
    line = one_line_error(logged_in("providers", "lst"), USAGE)
    assert "No such command 'lst'" in line
    line = one_line_error(logged_in("providers", "list", "-o", "xml"), USAGE)
    assert "'xml' is not one of" in line


# --- providers and models ---------------------------------------------------------------------


def test_providers_list_in_every_format(logged_in):
    table = logged_in("providers", "list")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "KIND", "REGION", "ENABLED"]
    # Aligned: every column starts where its header does.
    kind_at = lines[0].index("KIND")
    assert [line[kind_at:].split()[0] for line in lines[1:]] == ["openai_compatible", "simulator"]
    assert [line.split()[0] for line in lines[1:]] == ["dead", "sim"]

    as_json = json.loads(logged_in("providers", "list", "-o", "json").out)
    assert [p["name"] for p in as_json] == ["dead", "sim"]
    assert {"id", "kind", "enabled", "base_url"} <= set(as_json[0])
    assert "api_key" not in as_json[0]
    as_yaml = yaml.safe_load(logged_in("providers", "list", "-o", "yaml").out)
    assert as_yaml == as_json
    rows = list(csv.DictReader(io.StringIO(logged_in("providers", "list", "-o", "csv").out)))
    assert [(r["name"], r["kind"], r["enabled"]) for r in rows] == [
        ("dead", "openai_compatible", "false"),
        ("sim", "simulator", "true"),
    ]


def test_providers_disable_and_enable(logged_in):
    disabled = logged_in("providers", "disable", "sim", "-o", "json")
    assert disabled.code == 0, disabled.err
    assert json.loads(disabled.out)["enabled"] is False
    listed = json.loads(logged_in("providers", "list", "-o", "json").out)
    assert {p["name"]: p["enabled"] for p in listed}["sim"] is False
    enabled = logged_in("providers", "enable", "sim")
    assert enabled.code == 0, enabled.err
    assert enabled.out.splitlines()[2].split() == ["enabled", "true"]
    shown = yaml.safe_load(logged_in("providers", "get", "sim", "-o", "yaml").out)
    assert shown["enabled"] is True


def test_providers_test_reports_up_and_down(logged_in):
    up = logged_in("providers", "test", "sim", "-o", "json")
    assert up.code == 0, up.err
    result = json.loads(up.out)
    assert result["name"] == "sim" and result["status"] == "up"
    assert isinstance(result["latency_ms"], int)
    down = logged_in("providers", "test", "dead")
    line = one_line_error(down, CHECK_FAILED)
    assert line.startswith("atpctl: provider dead is down:")
    assert "status" in down.out and "down" in down.out


def test_models_list_by_provider(logged_in):
    table = logged_in("models", "list", "--provider", "sim")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split()[:5] == [
        "PUBLIC_NAME",
        "PROVIDER",
        "UPSTREAM_MODEL",
        "INPUT_PRICE",
        "OUTPUT_PRICE",
    ]
    assert [line.split()[:2] for line in lines[1:]] == [["sim-cheap", "sim"], ["sim-fast", "sim"]]
    every = json.loads(logged_in("models", "list", "-o", "json").out)
    assert {m["public_name"] for m in every} == {"sim-cheap", "sim-fast", "dead-model"}
    rows = list(csv.DictReader(io.StringIO(logged_in("models", "list", "-o", "csv").out)))
    assert {r["public_name"]: r["input_price"] for r in rows}["sim-fast"] == "1.000000"


# --- routes ------------------------------------------------------------------------------------


def test_routes_list_and_simulate(logged_in):
    listed = logged_in("routes", "list")
    assert listed.code == 0, listed.err
    header, row = listed.out.splitlines()
    assert header.split() == [
        "NAME",
        "ENABLED",
        "STRATEGY",
        "TIER",
        "CANDIDATES",
        "FALLBACKS",
        "DESCRIPTION",
    ]
    assert row.split()[:3] == ["team/cli", "true", "ordered"]
    assert row.endswith("sim-cheap,sim-fast             The CLI tests' route")
    route = next(csv.DictReader(io.StringIO(logged_in("routes", "list", "-o", "csv").out)))
    assert (route["name"], route["candidates"], route["tier"]) == (
        "team/cli",
        "sim-cheap,sim-fast",
        "",
    )
    ranking = logged_in("routes", "simulate", "team/cli", "--prompt", "Say hello")
    assert ranking.code == 0, ranking.err
    lines = ranking.out.splitlines()
    assert lines[0].split()[:3] == ["RANK", "MODEL", "PROVIDER"]
    # An ordered route chooses its first candidate.
    first = lines[1].split()
    assert first[1:3] == ["sim-cheap", "sim"] and first[-1] == "true"
    as_json = json.loads(
        logged_in(
            "routes", "simulate", "--prompt", "Hi", "--hint", "quality=high", "-o", "json"
        ).out
    )
    assert as_json["route"] == "auto"
    assert as_json["decision"]["model"] in {"sim-fast", "sim-cheap"}
    # As acme's key, by TENANT/NAME.
    keyed = logged_in("routes", "simulate", "team/cli", "-p", "Hi", "--key", "acme/ci", "-o", "csv")
    assert keyed.code == 0, keyed.err
    assert next(csv.DictReader(io.StringIO(keyed.out)))["model"] == "sim-cheap"
    refused = logged_in("routes", "simulate", "team/none", "-p", "Hi")
    assert "route: The route 'team/none' is not enabled." in one_line_error(refused, REFUSED)


# --- keys ------------------------------------------------------------------------------------


def test_keys_create_rotate_revoke(logged_in, cli_server):
    created = logged_in("keys", "create", "deploy", "--tenant", "acme", "-o", "json")
    assert created.code == 0, created.err
    key = json.loads(created.out)
    assert key["name"] == "deploy" and key["key"].startswith("atp_")
    assert "shown this once" in created.err
    assert models_of(cli_server.base_url, key["key"], 200) == 200

    listed = logged_in("keys", "list", "--tenant", "acme")
    assert listed.code == 0, listed.err
    names = {tuple(line.split()[:2]) for line in listed.out.splitlines()[1:]}
    assert {("acme", "ci"), ("acme", "deploy")} <= names

    rotated = logged_in("keys", "rotate", "acme/deploy", "--grace-seconds", "0", "-o", "yaml")
    assert rotated.code == 0, rotated.err
    new = yaml.safe_load(rotated.out)
    assert new["key"] != key["key"] and new["id"] != key["id"]
    assert models_of(cli_server.base_url, new["key"], 200) == 200
    assert models_of(cli_server.base_url, key["key"], 401) == 401

    revoked = logged_in("keys", "revoke", new["id"])
    assert revoked.code == 0, revoked.err
    assert "revoked_at" in revoked.out
    assert models_of(cli_server.base_url, new["key"], 401) == 401
    live = json.loads(logged_in("keys", "list", "-o", "json").out)
    assert "deploy" not in {k["name"] for k in live}
    every = json.loads(logged_in("keys", "list", "--all", "-o", "json").out)
    assert [k["name"] for k in every].count("deploy") == 2


# --- budgets and usage -------------------------------------------------------------------------


def test_budgets_and_usage(logged_in, cli_server):
    budgets = logged_in("budgets", "list", "--tenant", "acme")
    assert budgets.code == 0, budgets.err
    lines = budgets.out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "TARGET", "PERIOD", "LIMIT_USD"]
    assert lines[1].split()[0] == "monthly" and "monthly" in lines[1].split()[2:]
    as_csv = list(csv.DictReader(io.StringIO(logged_in("budgets", "list", "-o", "csv").out)))
    assert as_csv[0]["limit_usd"] == "50.000000"

    usage = logged_in("usage", "show", "--group-by", "tenant,model", "-o", "json")
    assert usage.code == 0, usage.err
    assert isinstance(json.loads(usage.out), list)
    table = logged_in("usage", "show", "--group-by", "model")
    assert table.code == 0, table.err
    assert table.out.splitlines()[0].split()[:3] == ["MODEL", "REQUESTS", "CACHED_REQUESTS"]
    bad = logged_in("usage", "show", "--group-by", "planet")
    assert "group_by: Unknown group 'planet'" in one_line_error(bad, REFUSED)


# --- audit -------------------------------------------------------------------------------------


def test_audit_verify_export_report(logged_in, tmp_path):
    verified = logged_in("audit", "verify", "-o", "json")
    assert verified.code == 0, verified.err
    assert json.loads(verified.out)["status"] == "ok"
    table = logged_in("audit", "verify", "--full")
    assert table.code == 0 and table.out.splitlines()[1].split() == ["status", "ok"]

    export = tmp_path / "events.jsonl"
    done = logged_in("audit", "export", "--format", "jsonl", "--file", str(export))
    assert done.code == 0, done.err
    assert done.err.startswith("Wrote ") and str(export) in done.err
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert "atp_export" in records[-1]
    assert any(r.get("event_type") == "provider.tested" for r in records[:-1])
    as_csv = logged_in("audit", "export", "--event-type", "provider.tested")
    assert as_csv.code == 0, as_csv.err
    assert as_csv.out.splitlines()[0].startswith("sequence,") or "event_type" in as_csv.out

    report = logged_in("audit", "report", "--since", "2000-01-01", "--until", "2100-01-01")
    assert report.code == 0, report.err
    assert "verification" in json.loads(report.out)
    pdf = tmp_path / "report.pdf"
    assert (
        logged_in(
            "audit",
            "report",
            "--since",
            "2000-01-01",
            "--until",
            "2100-01-01",
            "--format",
            "pdf",
            "-f",
            str(pdf),
        ).code
        == 0
    )
    assert pdf.read_bytes().startswith(b"%PDF")
    bad = logged_in("audit", "report", "--since", "someday", "--until", "2100-01-01")
    assert "since" in one_line_error(bad, REFUSED)


# --- the configuration file --------------------------------------------------------------------

CHANGE = """\
version: 1
routes:
  - name: team/applied
    strategy: cheapest
    candidates: [sim-cheap, sim-fast]
tenants:
  - slug: initech
    name: Initech
    api_keys:
      - name: robot
"""


def test_apply_dry_run_then_apply_then_export_round_trip(logged_in, cli_server, tmp_path):
    path = tmp_path / "change.yaml"
    path.write_text(CHANGE)
    dry = logged_in("apply", "-f", str(path), "--dry-run")
    assert dry.code == 0, dry.err
    assert "route team/applied: created" in dry.out
    assert dry.out.splitlines()[-1].startswith("Dry run, nothing applied: ")
    assert "shown once" not in dry.out
    assert "team/applied" not in logged_in("routes", "list").out

    applied = logged_in("apply", "-f", str(path), "-o", "json")
    assert applied.code == 0, applied.err
    report = json.loads(applied.out)
    assert report["dry_run"] is False and report["changed"] is True
    by_name = {c["name"]: c for c in report["changes"]}
    assert by_name["team/applied"]["action"] == "created"
    robot = by_name["initech/robot"]
    assert robot["action"] == "created" and robot["key"].startswith("atp_")
    assert models_of(cli_server.base_url, robot["key"], 200) == 200
    assert "team/applied" in logged_in("routes", "list").out

    again = logged_in("apply", "-f", "-", input=CHANGE)
    assert again.code == 0, again.err
    assert again.out.splitlines()[-1].startswith("No changes: ")

    exported = tmp_path / "atp.yaml"
    done = logged_in("export", "--file", str(exported))
    assert done.code == 0, done.err
    text = exported.read_text()
    assert text.startswith("# ATP configuration")
    document = yaml.safe_load(text)
    assert {"team/applied", "team/cli"} <= {r["name"] for r in document["routes"]}
    assert ACME_KEY not in text and robot["key"] not in text
    as_json = json.loads(logged_in("export", "--format", "json").out)
    assert as_json["version"] == 1 and {t["slug"] for t in as_json["tenants"]} >= {
        "acme",
        "initech",
    }
    # The export applied to the same server changes nothing.
    round_trip = logged_in("apply", "-f", str(exported), "-o", "yaml")
    assert round_trip.code == 0, round_trip.err
    assert yaml.safe_load(round_trip.out)["changed"] is False
    # The REST export is audited like atp_export, and the applied changes carry the caller.
    events = [
        json.loads(line)
        for line in logged_in("audit", "export", "--format", "jsonl").out.splitlines()
    ][:-1]
    exports = [e for e in events if e["event_type"] == "config.exported"]
    assert exports and exports[-1]["actor"] == "cli-root"
    created = [e for e in events if e["event_type"].startswith("route.") and e["resource_id"]]
    assert any(e["actor"] == "cli-root" and e["source"] == "config" for e in created)


def test_an_invalid_configuration_changes_nothing(logged_in, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroutes:\n  - name: team/bad\n    strategy: dice\n")
    result = logged_in("apply", "-f", str(bad))
    line = one_line_error(result, REFUSED)
    assert "Invalid configuration: routes[0].strategy" in line
    assert "team/bad" not in logged_in("routes", "list").out
    broken = logged_in("apply", "-f", "-", input="version: [1\n")
    assert "not valid YAML" in one_line_error(broken, REFUSED)
    missing = logged_in("apply", "-f", str(tmp_path / "none.yaml"))
    assert "cannot read" in one_line_error(missing, REFUSED)


# --- the server, the script, completion --------------------------------------------------------


def test_an_unreachable_server_is_exit_6(atpctl):
    result = atpctl("routes", "list", env={"ATP_SERVER": "http://127.0.0.1:9", "ATP_TOKEN": "t"})
    assert "cannot reach http://127.0.0.1:9" in one_line_error(result, UNAVAILABLE)


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "atpctl"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("atpctl, version ")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(atpctl, shell):
    script = atpctl("completion", shell)
    assert script.code == 0, script.err
    assert "_ATPCTL_COMPLETE" in script.out
    # The same script click prints through the environment variable.
    sourced = atpctl(env={"_ATPCTL_COMPLETE": f"{shell}_source"})
    assert sourced.out == script.out


def test_completion_completes_commands_and_context_names(atpctl, cli_server):
    atpctl("config", "set-context", "staging", "--server", cli_server.base_url)
    words = atpctl(
        env={"_ATPCTL_COMPLETE": "bash_complete", "COMP_WORDS": "atpctl prov", "COMP_CWORD": "1"}
    )
    assert words.out.split() == ["plain,providers"]
    names = atpctl(
        env={
            "_ATPCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": "atpctl config use-context st",
            "COMP_CWORD": "3",
        }
    )
    assert names.out.split() == ["plain,staging"]
