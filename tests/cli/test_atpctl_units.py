"""atpctl's parts without a server: error messages, rendering, contexts, and that the client
loads none of the server's code."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from atpctl import contexts
from atpctl.errors import USAGE, CLIError, error_message
from atpctl.output import cell, render_object, render_rows

ROOT = Path(__file__).resolve().parents[2]


def test_error_bodies_read_as_one_sentence():
    assert error_message({"detail": "Not found."}) == "Not found."
    assert error_message({"detail": "Taken.", "code": "conflict", "field": "name"}) == "Taken."
    body = {
        "name": ["This field is required.", "Too long."],
        "non_field_errors": ["Give at least one price."],
        "members": {"0": {"user": ["No user 'x'."]}},
    }
    assert error_message(body) == (
        "name: This field is required.; name: Too long.; Give at least one price.; "
        "members[0].user: No user 'x'."
    )
    assert CLIError("two\nlines  here").message == "two lines here"


def test_cells_are_one_line_and_readable():
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(5.2e-05) == "0.000052"
    assert cell({"id": "1", "name": "sim", "kind": "simulator"}) == "sim"
    assert cell(["a", "b"]) == "a,b"
    assert cell({"x": 1}) == '{"x":1}'
    assert cell("line one\nline two") == "line one line two"


ROWS = [
    {"name": "sim", "kind": "simulator", "enabled": True, "extra": {"a": 1}},
    {"name": "a-much-longer-name", "kind": "openai", "enabled": False, "extra": None},
]


def test_a_table_aligns_its_columns():
    lines = render_rows(ROWS, ["name", "kind", "enabled"], "table").splitlines()
    assert lines == [
        "NAME                KIND       ENABLED",
        "sim                 simulator  true",
        "a-much-longer-name  openai     false",
    ]


def test_json_and_yaml_keep_every_field_csv_the_columns():
    assert json.loads(render_rows(ROWS, ["name"], "json")) == ROWS
    assert yaml.safe_load(render_rows(ROWS, ["name"], "yaml")) == ROWS
    rows = list(csv.reader(io.StringIO(render_rows(ROWS, ["name", "enabled"], "csv"))))
    assert rows == [["name", "enabled"], ["sim", "true"], ["a-much-longer-name", "false"]]


def test_csv_cells_never_start_a_formula():
    text = render_rows([{"name": "=HYPERLINK(1)", "n": "-1.5"}], ["name", "n"], "csv")
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=HYPERLINK(1)", "-1.5"]


def test_one_object_as_field_value_lines():
    text = render_object({"status": "ok", "checked": 3, "problem": None}, "table")
    assert text.splitlines() == ["FIELD    VALUE", "status   ok", "checked  3", "problem"]
    assert render_object({"a": 1}, "csv") == "a\n1\n"


def test_tokens_are_masked():
    token = "atpadm_abcd" + "x" * 30
    assert contexts.mask(token) == "atpadm_abcd…"
    assert contexts.mask("short") == "****"
    assert contexts.mask(None) == ""


def test_the_contexts_file_is_private_and_resolution_follows_precedence(tmp_path, monkeypatch):
    for name in ("ATP_SERVER", "ATP_TOKEN", "ATPCTL_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "dir" / "config.yaml"
    contexts.save(
        path,
        {
            "current-context": "a",
            "contexts": {
                "a": {"server": "https://a.example", "token": "ta"},
                "b": {"server": "https://b.example/", "token": "tb"},
            },
        },
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    current = contexts.resolve(path=path, context=None, server=None, token=None)
    assert (current.server, current.token, current.context) == ("https://a.example", "ta", "a")
    other = contexts.resolve(path=path, context="b", server=None, token=None)
    assert (other.server, other.token) == ("https://b.example", "tb")
    monkeypatch.setenv("ATPCTL_CONTEXT", "b")
    assert contexts.resolve(path=path, context=None, server=None, token=None).token == "tb"
    monkeypatch.setenv("ATP_TOKEN", "from-env")
    monkeypatch.setenv("ATP_SERVER", "http://env.example")
    by_env = contexts.resolve(path=path, context=None, server=None, token=None)
    assert (by_env.server, by_env.token) == ("http://env.example", "from-env")
    by_flag = contexts.resolve(path=path, context=None, server="http://flag.example", token="f")
    assert (by_flag.server, by_flag.token) == ("http://flag.example", "f")
    with pytest.raises(CLIError) as missing:
        contexts.resolve(path=path, context="nowhere", server=None, token=None)
    assert missing.value.code == USAGE


def test_the_config_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ATPCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert contexts.config_path() == tmp_path / "xdg" / "atpctl" / "config.yaml"
    monkeypatch.setenv("ATPCTL_CONFIG", str(tmp_path / "c.yaml"))
    assert contexts.config_path() == tmp_path / "c.yaml"
    assert contexts.config_path(str(tmp_path / "flag.yaml")) == tmp_path / "flag.yaml"


def test_a_server_must_be_an_http_url():
    assert contexts.check_server("https://atp.example.com/") == "https://atp.example.com"
    with pytest.raises(CLIError):
        contexts.check_server("atp.example.com")


def test_the_client_loads_none_of_the_servers_code():
    code = (
        "import sys, atpctl.main; "
        "print([m for m in sys.modules if m.split('.')[0] in ('django', 'atp_site', 'apps', "
        "'rest_framework')])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
