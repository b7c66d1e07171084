"""tools/render_chart.py renders the part of Helm's template language the chart uses, as
helm does, and refuses the rest rather than render it wrongly."""

from __future__ import annotations

import pytest
import yaml
from render_chart import TemplateError, render_template

CONTEXT = {
    "Values": {
        "name": "atp",
        "port": 8000,
        "on": True,
        "off": False,
        "empty": "",
        "nested": {"list": ["a", "b"], "map": {"b": 2, "a": 1}},
    },
    "Release": {"Name": "rel", "Revision": 3},
    "Chart": {"Name": "atp", "AppVersion": "1.2.3"},
}


def render(text: str) -> str:
    return render_template(text, CONTEXT)


def test_values_release_and_chart_are_substituted():
    assert render("{{ .Release.Name }}-{{ .Values.name }}:{{ .Values.port }}") == "rel-atp:8000"
    assert render("{{ .Chart.AppVersion | quote }}") == '"1.2.3"'
    assert render("{{ .Values.on }}/{{ .Values.off }}") == "true/false"
    assert render("job-{{ .Release.Revision }}") == "job-3"


def test_dashes_trim_the_white_space_beside_the_action():
    assert render("a:\n  {{- .Values.name }}\nb") == "a:atp\nb"
    assert render("a: {{ .Values.name -}}  \n\n  b") == "a: atpb"
    # Without the dash, nothing is trimmed; a dash needs the space after it.
    assert render("a:\n  {{ .Values.name }}\n") == "a:\n  atp\n"


def test_if_else_follows_gos_truth():
    template = "{{ if .Values.X }}yes{{ else }}no{{ end }}"
    for value, expected in [("on", "yes"), ("off", "no"), ("empty", "no"), ("port", "yes")]:
        assert render(template.replace("X", value)) == expected
    assert render("{{ if not .Values.off }}shown{{ end }}") == "shown"
    assert render("{{ if not .Values.on }}shown{{ end }}") == ""
    nested = "{{- if .Values.on }}\nA\n{{- if .Values.off }}\nB\n{{- end }}\nC\n{{- end }}\n"
    assert render(nested) == "\nA\nC\n"


def test_to_yaml_with_nindent_gives_a_block_helm_would():
    out = render("data:\n  {{- toYaml .Values.nested | nindent 2 }}\n")
    assert out == "data:\n  list:\n  - a\n  - b\n  map:\n    a: 1\n    b: 2\n"
    assert yaml.safe_load(out) == {"data": CONTEXT["Values"]["nested"]}
    assert render('{{ "x\\ny" | indent 2 }}') == "  x\n  y"


@pytest.mark.parametrize(
    "template",
    [
        "{{ .Values.missing }}",  # helm prints nothing; a typo must not pass unseen
        "{{ .Values.nested.map.c }}",
        "{{ .Capabilities.KubeVersion }}",
        "{{ .Values.nested }}",  # a map printed without toYaml
        '{{ include "atp.labels" . }}',
        "{{ range .Values.nested.list }}x{{ end }}",
        "{{ .Values.name | upper }}",
        "{{ default 1 .Values.port }}",
        "{{ if .Values.on }}unclosed",
        "{{ end }}",
        "{{ if .Values.on }}a{{ else if .Values.off }}b{{ end }}",
        "{{/* unclosed comment }}",
    ],
)
def test_anything_else_is_refused(template):
    with pytest.raises(TemplateError):
        render(template)


def test_comments_render_nothing():
    assert render("a{{/* a note */}}b") == "ab"
