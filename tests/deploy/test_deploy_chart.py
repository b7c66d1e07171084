"""The Helm chart, rendered with its default values: the committed plain manifests are
exactly that rendering, every object is valid for Kubernetes, and the objects hang
together (probes, volumes, the Secret's keys, selectors)."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from render_chart import CHART, MANIFESTS, expected_manifests, render_chart

# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion); kubernetes-validate
# ships its schemas, so nothing is fetched.
KUBERNETES_VERSION = "1.30.0"
DATA_DIR = "/var/lib/atp"


def objects(values: dict | None = None) -> list[dict]:
    rendered = render_chart(values=values)
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return objects()


def by_kind(rendered: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


def pod_specs(rendered: list[dict]) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in rendered
        if o["kind"] in ("StatefulSet", "Deployment", "Job")
    }


def default_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_the_plain_manifests_are_the_charts_default_rendering():
    committed = {p.name: p.read_text() for p in MANIFESTS.glob("*.yaml")}
    assert committed == expected_manifests(), (
        "deploy/kubernetes/ differs from the chart: run `python tools/render_chart.py --write`"
    )


def test_kubeversion_matches_the_validated_version():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["kubeVersion"] == f">={KUBERNETES_VERSION}-0"


def test_every_object_is_valid_for_kubernetes(rendered):
    assert len(rendered) >= 12
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_broken_object(rendered):
    broken = copy.deepcopy(by_kind(rendered, "StatefulSet")["atp-web"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(by_kind(rendered, "Deployment")["atp-beat"])
    broken["spec"]["replica"] = 1  # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_chart_has_every_part_the_deployment_needs(rendered):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    assert {
        ("ConfigMap", "atp-config"),
        ("Secret", "atp-secrets"),
        ("StatefulSet", "atp-web"),
        ("Service", "atp-web"),
        ("HorizontalPodAutoscaler", "atp-web"),
        ("PodDisruptionBudget", "atp-web"),
        ("StatefulSet", "atp-worker"),
        ("Deployment", "atp-beat"),
        ("Job", "atp-migrate-1"),
    } <= kinds


def test_each_web_and_worker_instance_has_its_own_persistent_data_dir(rendered):
    for name in ("atp-web", "atp-worker"):
        sts = by_kind(rendered, "StatefulSet")[name]
        claims = {c["metadata"]["name"]: c for c in sts["spec"]["volumeClaimTemplates"]}
        assert claims["data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
        mounts = sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "data", "mountPath": DATA_DIR} in mounts
        # Scaling in keeps the volume, and with it any spilled rows.
        assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"


def test_web_probes_use_the_health_endpoints(rendered):
    web = by_kind(rendered, "StatefulSet")["atp-web"]["spec"]["template"]["spec"]
    container = web["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = by_kind(rendered, "ConfigMap")["atp-config"]["data"]
    allowed = config["ATP_ALLOWED_HOSTS"].split(",")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in allowed, "Django would refuse the probe's Host"
    # Time to finish in-flight requests (uvicorn's 30 s) and write the queue.
    assert web["terminationGracePeriodSeconds"] > 30
    assert "--timeout-graceful-shutdown=30" in container["command"]


def test_the_hpa_and_the_pdb_aim_at_the_web_pods(rendered):
    sts = by_kind(rendered, "StatefulSet")["atp-web"]
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")["atp-web"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "atp-web",
    }
    assert 1 < hpa["minReplicas"] <= hpa["maxReplicas"]
    # With the HPA on, the StatefulSet leaves the count to it (an upgrade would reset it).
    assert "replicas" not in sts["spec"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    pdb = by_kind(rendered, "PodDisruptionBudget")["atp-web"]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    service = by_kind(rendered, "Service")["atp-web"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_without_autoscaling_the_statefulset_sets_its_replicas():
    values = default_values()
    values["web"]["autoscaling"]["enabled"] = False
    rendered = objects(values)
    assert "HorizontalPodAutoscaler" not in {o["kind"] for o in rendered}
    assert by_kind(rendered, "StatefulSet")["atp-web"]["spec"]["replicas"] == 2


def test_beat_is_one_replica_that_never_overlaps(rendered):
    beat = by_kind(rendered, "Deployment")["atp-beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"
    command = beat["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["celery", "--app=atp_site", "beat"]
    assert "--schedule=/var/lib/atp/celerybeat-schedule" in command


def test_migrations_run_as_a_job(rendered):
    job = by_kind(rendered, "Job")["atp-migrate-1"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["restartPolicy"] == "Never"


def test_every_pod_is_non_root_with_a_read_only_root(rendered):
    for name, spec in pod_specs(rendered).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            # Writable places are volumes: the data dir and /tmp.
            paths = {m["mountPath"] for m in container["volumeMounts"]}
            assert {DATA_DIR, "/tmp"} <= paths, name


def test_mounts_volumes_config_and_secret_keys_resolve(rendered):
    config = by_kind(rendered, "ConfigMap")["atp-config"]
    secret = by_kind(rendered, "Secret")["atp-secrets"]
    claims = set(by_kind(rendered, "PersistentVolumeClaim"))
    secret_mounts = set()
    for name, spec in pod_specs(rendered).items():
        volumes = {v["name"]: v for v in spec["volumes"]}
        owner = by_kind(rendered, "StatefulSet").get(name, {"spec": {}})
        templates = owner["spec"].get("volumeClaimTemplates", [])
        volumes |= {c["metadata"]["name"]: c for c in templates}
        for container in spec["containers"]:
            for mount in container["volumeMounts"]:
                volume = volumes[mount["name"]]
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims
                if "secret" in volume:
                    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
                    secret_mounts.add(mount["mountPath"])
            assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
            for variable in container.get("env", []):
                ref = variable["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"]
                assert ref["key"] in secret["stringData"], variable["name"]
    # Every *_FILE setting names a key of the Secret, in the directory it is mounted at.
    files = {k: v for k, v in config["data"].items() if k.endswith("_FILE")}
    assert len(files) >= 4
    for variable, path in files.items():
        directory, key = path.rsplit("/", 1)
        assert directory in secret_mounts, variable
        assert key in secret["stringData"], variable


def test_the_shared_volumes_can_be_turned_off():
    values = default_values()
    values["jobResults"]["enabled"] = False
    values["backups"]["enabled"] = False
    values["secret"]["create"] = False
    rendered = objects(values)
    assert not by_kind(rendered, "PersistentVolumeClaim")
    assert not by_kind(rendered, "Secret")
    assert "ATP_BACKUP_DIR" not in by_kind(rendered, "ConfigMap")["atp-config"]["data"]
    for spec in pod_specs(rendered).values():
        names = {v["name"] for v in spec["volumes"]}
        assert not names & {"job-results", "backups"}
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_a_storage_class_is_named_only_when_given():
    values = default_values()
    values["web"]["persistence"]["storageClassName"] = "fast-ssd"
    rendered = objects(values)
    claim = by_kind(rendered, "StatefulSet")["atp-web"]["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    # An empty storageClassName would turn dynamic provisioning off: it is left out instead.
    default = by_kind(objects(), "StatefulSet")["atp-worker"]["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in default["spec"]


def test_images_are_the_charts_app_version(rendered):
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for spec in pod_specs(rendered).values():
        for container in spec["containers"]:
            assert container["image"] == f"atp:{meta['appVersion']}"


def test_the_manifests_directory_holds_nothing_else():
    assert sorted(p.name for p in Path(MANIFESTS).iterdir()) == sorted(expected_manifests())
