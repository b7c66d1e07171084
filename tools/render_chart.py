"""Render the Helm chart in deploy/helm/atp without helm, for the plain manifests and tests.

Usage:
    python tools/render_chart.py            # print every rendered template
    python tools/render_chart.py --write    # rewrite deploy/kubernetes/ from the chart
    python tools/render_chart.py --check    # exit 1 when deploy/kubernetes/ is out of date

The chart's templates keep to a small part of Helm's template language, and this module
renders exactly that part, the way helm does, refusing anything else:

- `{{ .Values.a.b }}`, `{{ .Release.Name }}`, `{{ .Release.Revision }}`,
  `{{ .Release.Service }}`, `{{ .Chart.Name }}`, `{{ .Chart.Version }}`,
  `{{ .Chart.AppVersion }}` (a missing value is an error, where helm would print nothing);
- string and integer literals, functions `quote`, `toYaml`, `indent`, `nindent`, `not`,
  called with arguments or at the end of a pipeline (`{{ toYaml .Values.x | nindent 4 }}`);
- `{{ if ... }}`, `{{ else }}`, `{{ end }}` with Go's notion of truth (false, 0, "", empty
  lists and maps, and nothing are false);
- `{{- ` and ` -}}`, which remove the white space before and after the action;
- comments `{{/* ... */}}`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "atp"
MANIFESTS = ROOT / "deploy" / "kubernetes"
RELEASE = {"Name": "atp", "Namespace": "default", "Revision": 1, "Service": "Helm"}

# `{{- ` trims before, ` -}}` after; Go requires the space next to the dash.
ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.DOTALL)
WORD = re.compile(r'"(?:[^"\\]|\\.)*"|\||[^\s|"]+')


class TemplateError(Exception):
    """A template this renderer does not handle, or a value it does not find."""


@dataclass
class If:
    condition: str
    then: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)
    in_else: bool = False


@dataclass
class Output:
    pipeline: str


def _tokens(text: str) -> list[Any]:
    """Text pieces and actions, with the actions' white-space trimming applied."""
    tokens: list[Any] = []
    position = 0
    trim_next = False
    for match in ACTION.finditer(text):
        before = text[position : match.start()]
        if trim_next:
            before = before.lstrip(" \t\r\n")
        if match.group(1):
            before = before.rstrip(" \t\r\n")
        tokens.append(before)
        tokens.append(("action", match.group(2).strip()))
        trim_next = bool(match.group(3))
        position = match.end()
    rest = text[position:]
    tokens.append(rest.lstrip(" \t\r\n") if trim_next else rest)
    return tokens


def parse(text: str) -> list[Any]:
    """The template as a tree of text, Output and If nodes."""
    root: list[Any] = []
    stack: list[tuple[If, list[Any]]] = []
    body = root
    for token in _tokens(text):
        if isinstance(token, str):
            if token:
                body.append(token)
            continue
        action = token[1]
        if action.startswith("/*"):
            if not action.endswith("*/"):
                raise TemplateError(f"unclosed comment: {{{{{action}}}}}")
            continue
        keyword = action.split(None, 1)[0] if action else ""
        if keyword == "if":
            node = If(action[2:].strip())
            body.append(node)
            stack.append((node, body))
            body = node.then
        elif keyword == "else":
            if action != "else" or not stack or stack[-1][0].in_else:
                raise TemplateError(f"unsupported or misplaced {{{{ {action} }}}}")
            stack[-1][0].in_else = True
            body = stack[-1][0].otherwise
        elif keyword == "end":
            if not stack:
                raise TemplateError("{{ end }} without {{ if }}")
            _, body = stack.pop()
        elif keyword in {"range", "with", "define", "template", "block", "include", "tpl"}:
            raise TemplateError(f"unsupported action {{{{ {action} }}}}")
        else:
            body.append(Output(action))
    if stack:
        raise TemplateError("{{ if }} without {{ end }}")
    return root


def _lookup(path: str, context: dict[str, Any]) -> Any:
    parts = path.split(".")[1:]
    if not parts or parts[0] not in context:
        raise TemplateError(f"unsupported value {path}")
    value: Any = context
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"no value for {path}")
        value = value[part]
    return value


def _argument(word: str, context: dict[str, Any]) -> Any:
    if word.startswith('"'):
        return json.loads(word)
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if word.startswith("."):
        return _lookup(word, context)
    raise TemplateError(f"unsupported argument {word!r}")


def to_text(value: Any) -> str:
    """A value as Go's text/template prints it."""
    if value is None:
        raise TemplateError("a value is missing")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError("a map or list needs toYaml")
    return str(value)


def to_yaml(value: Any) -> str:
    """Helm's toYaml: block style, keys sorted, no trailing newline."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _indent(spaces: int, text: Any) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in to_text(text).split("\n"))


FUNCTIONS = {
    "quote": lambda value: json.dumps(to_text(value)),
    "toYaml": to_yaml,
    "indent": _indent,
    "nindent": lambda spaces, text: "\n" + _indent(spaces, text),
    "not": lambda value: not truthy(value),
}


def truthy(value: Any) -> bool:
    """Go's truth: false, 0, "", nil and empty collections are false."""
    return value not in (None, False, 0, "") and value != [] and value != {}


def evaluate(pipeline: str, context: dict[str, Any]) -> Any:
    commands: list[list[str]] = [[]]
    for word in WORD.findall(pipeline):
        if word == "|":
            commands.append([])
        else:
            commands[-1].append(word)
    value: Any = None
    for number, words in enumerate(commands):
        if not words:
            raise TemplateError(f"empty command in {pipeline!r}")
        head, args = words[0], [_argument(word, context) for word in words[1:]]
        if number > 0:
            args.append(value)
        if head in FUNCTIONS:
            value = FUNCTIONS[head](*args)
        elif number == 0 and not args:
            value = _argument(head, context)
        else:
            raise TemplateError(f"unsupported function {head!r} in {pipeline!r}")
    return value


def _execute(nodes: list[Any], context: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Output):
            out.append(to_text(evaluate(node.pipeline, context)))
        else:
            branch = node.then if truthy(evaluate(node.condition, context)) else node.otherwise
            _execute(branch, context, out)


def render_template(text: str, context: dict[str, Any]) -> str:
    out: list[str] = []
    _execute(parse(text), context, out)
    return "".join(out)


def chart_context(chart: Path = CHART, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """What templates see: .Values (the chart's defaults), .Release and .Chart."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    return {
        "Values": defaults if values is None else values,
        "Release": dict(RELEASE),
        "Chart": {
            "Name": meta["name"],
            "Version": meta["version"],
            "AppVersion": meta["appVersion"],
        },
    }


def render_chart(chart: Path = CHART, values: dict[str, Any] | None = None) -> dict[str, str]:
    """Each template's output by file name; templates that render nothing are left out."""
    context = chart_context(chart, values)
    rendered = {}
    for path in sorted((chart / "templates").glob("*.yaml")):
        text = render_template(path.read_text(encoding="utf-8"), context)
        if text.strip():
            source = f"# Source: {chart.name}/templates/{path.name}\n"
            rendered[path.name] = "---\n" + source + text.strip("\n") + "\n"
    return rendered


def manifests_header() -> str:
    return (
        "# Rendered from deploy/helm/atp with its default values by tools/render_chart.py;\n"
        "# do not edit: change the chart, then run `python tools/render_chart.py --write`.\n"
    )


def expected_manifests() -> dict[str, str]:
    return {name: manifests_header() + text for name, text in render_chart().items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite deploy/kubernetes/")
    mode.add_argument("--check", action="store_true", help="fail if deploy/kubernetes/ differs")
    options = parser.parse_args(argv)
    expected = expected_manifests()
    if options.write:
        MANIFESTS.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in MANIFESTS.glob("*.yaml")) - set(expected):
            (MANIFESTS / stale).unlink()
        for name, text in expected.items():
            (MANIFESTS / name).write_text(text, encoding="utf-8")
        return 0
    if options.check:
        actual = {p.name: p.read_text(encoding="utf-8") for p in MANIFESTS.glob("*.yaml")}
        stale = sorted(n for n in set(expected) | set(actual) if expected.get(n) != actual.get(n))
        for name in stale:
            print(f"deploy/kubernetes/{name} differs from the chart's rendering")
        return 1 if stale else 0
    sys.stdout.write("".join(expected.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
