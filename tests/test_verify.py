"""``envspec verify``: live objects, built from the rendered documents as an API server serves
them, compared with the spec; each kind of drift is found, nothing else, and no Secret value is
ever shown."""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envspec import api
from envspec.cli import _Context, cli
from envspec.verify import compare
from tests.apiserver import as_list, made_secret, pods_of, served, unmanaged
from tests.helpers import REPO, minimal, run, write_spec
from tests.readers import _yaml12

DIGEST = "sha256:" + "4f" * 32
Live = list[dict[str, Any]]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spec")
    shutil.copy(REPO / "envspec.yaml", folder)
    shutil.copytree(REPO / "environments", folder / "environments")
    return folder


def rendered(spec: Path, environment: str) -> Live:
    return copy.deepcopy(_rendered(spec, environment))


@functools.cache
def _rendered(spec: Path, environment: str) -> Live:
    stream = api.kubernetes_documents(api.check(spec), environment)
    return list(_yaml12().load_all(stream))


def planted(key: str) -> str:
    return f"planted-{key}-value-9f3a7c"


def deployed(spec: Path, environment: str) -> Live:
    """The environment as a cluster holds it after ``kubectl apply``, its Secrets filled in and
    its Deployments' pods running."""
    live = []
    documents = rendered(spec, environment)
    for document in documents:
        if document["kind"] == "Secret":
            document["stringData"] = {key: planted(key) for key in document["stringData"]}
        live.append(served(document))
        if document["kind"] == "Deployment":
            scaler = [
                d
                for d in documents
                if d["kind"] == "HorizontalPodAutoscaler"
                and d["spec"]["scaleTargetRef"]["name"] == document["metadata"]["name"]
            ]
            count = scaler[0]["spec"]["minReplicas"] if scaler else document["spec"]["replicas"]
            live += pods_of(live[-1], count)
        if document["kind"] == "ExternalSecret":
            keys = [entry["secretKey"] for entry in document["spec"]["data"]]
            live.append(made_secret(document, {key: planted(key) for key in keys}))
    return live + unmanaged(live[0]["metadata"]["name"])


def verify(spec: Path, live: Live, tmp_path: Path, environment: str, *options: str) -> Any:
    source = tmp_path / "live.json"
    source.write_text(as_list(live), encoding="utf-8")
    return run("verify", "--env", environment, "--from", str(source), "--spec", str(spec), *options)


def find(live: Live, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in live if o["kind"] == kind and o["metadata"]["name"] == name)


def container(live: Live, name: str = "backend") -> dict[str, Any]:
    pod: dict[str, Any] = find(live, "Deployment", name)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)


def env_entry(live: Live, variable: str) -> dict[str, Any]:
    return next(e for e in container(live)["env"] if e["name"] == variable)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_unchanged_deployment_has_no_drift(spec: Path, tmp_path: Path, environment: str) -> None:
    live = deployed(spec, environment)
    assert container(live)["imagePullPolicy"] == "IfNotPresent"  # the server's defaults are there
    result = verify(spec, live, tmp_path, environment)
    assert result.exit_code == 0, result.stdout
    assert result.stdout == ""
    namespace = f"shop-{environment}"
    objects = len(rendered(spec, environment)) + (environment == "production")
    assert result.stderr == f"envspec: {environment} ({namespace}): no drift in {objects} objects\n"


def _set(path: list[str | int], value: Any) -> Callable[[Live], None]:
    def change(live: Live) -> None:
        target: Any = container(live)
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
        target[path[-1]] = value

    return change


def _remove_env(variable: str) -> Callable[[Live], None]:
    def change(live: Live) -> None:
        container(live)["env"].remove(env_entry(live, variable))

    return change


def _literal(variable: str) -> Callable[[Live], None]:
    """The variable set in the Deployment by hand (``kubectl set env``), its secret value in it."""

    def change(live: Live) -> None:
        entry = env_entry(live, variable)
        entry.pop("valueFrom")
        entry["value"] = planted(variable)

    return change


def _pod(field: str, value: Any) -> Callable[[Live], None]:
    def change(live: Live) -> None:
        find(live, "Deployment", "backend")["spec"]["template"]["spec"][field] = value

    return change


def _object(
    kind: str, name: str, change: Callable[[dict[str, Any]], None]
) -> Callable[[Live], None]:
    return lambda live: change(find(live, kind, name))


def _delete(kind: str, name: str) -> Callable[[Live], None]:
    return lambda live: live.remove(find(live, kind, name))


IMAGE = "ghcr.io/example-shop/backend"
BACKEND_DIGEST = "sha256:7d01be34d8ae893d4023734e0749694e39717885573204558a7e10c09e57f93b"
"""The example's backend digest in staging and production."""
CASES: list[tuple[str, Callable[[Live], None], str]] = [
    (
        "staging",
        _set(["image"], f"{IMAGE}:2.13.9"),
        "Deployment/backend: containers[backend].image: "
        f'expected "{IMAGE}:2.14.0@{BACKEND_DIGEST}", '
        f'found "{IMAGE}:2.13.9"',
    ),
    (
        "production",
        _set(["image"], f"{IMAGE}:2.14.0@{DIGEST}"),
        "Deployment/backend: containers[backend].image: "
        f'expected "{IMAGE}:2.14.0@{BACKEND_DIGEST}", '
        f'found "{IMAGE}:2.14.0@{DIGEST}"',
    ),
    (
        "staging",
        _object("Deployment", "backend", lambda o: o["spec"].update(replicas=5)),
        "Deployment/backend: replicas: expected 2, found 5",
    ),
    (
        "production",
        _object("HorizontalPodAutoscaler", "backend", lambda o: o["spec"].update(maxReplicas=20)),
        "HorizontalPodAutoscaler/backend: maxReplicas: expected 10, found 20",
    ),
    (
        "production",
        _object("HorizontalPodAutoscaler", "worker", lambda o: o["spec"].update(minReplicas=1)),
        "HorizontalPodAutoscaler/worker: minReplicas: expected 4, found 1",
    ),
    (
        "production",
        _object(
            "HorizontalPodAutoscaler",
            "backend",
            lambda o: o["spec"]["metrics"][0]["resource"]["target"].update(averageUtilization=90),
        ),
        "HorizontalPodAutoscaler/backend: targetCPUUtilization: expected 70, found 90",
    ),
    (
        "production",
        _remove_env("POSTGRES_PASSWORD"),
        "Deployment/backend: containers[backend].env.POSTGRES_PASSWORD: "
        "expected secretKeyRef shop-secrets/POSTGRES_PASSWORD, found absent",
    ),
    (
        "production",
        _remove_env("DATABASE_URL"),
        "Deployment/backend: containers[backend].env.DATABASE_URL: expected value "
        '"postgres://shop:$(POSTGRES_PASSWORD)@shop-db.abc123.eu-central-1.rds.amazonaws.com:5432'
        '/shop", found absent',
    ),
    (
        "staging",
        lambda live: env_entry(live, "SECRET_KEY")["valueFrom"]["secretKeyRef"].update(
            name="shop-secrets-old"
        ),
        "Deployment/backend: containers[backend].env.SECRET_KEY: "
        "expected secretKeyRef shop-secrets/SECRET_KEY, "
        "found secretKeyRef shop-secrets-old/SECRET_KEY",
    ),
    (
        "production",
        _literal("STRIPE_SECRET_KEY"),
        "Deployment/backend: containers[backend].env.STRIPE_SECRET_KEY: "
        "expected secretKeyRef shop-secrets/STRIPE_SECRET_KEY, found a literal value",
    ),
    (
        "staging",
        lambda live: container(live)["env"].append({"name": "FEATURE_X", "value": "on"}),
        "Deployment/backend: containers[backend].env.FEATURE_X: "
        "expected absent, found a literal value",
    ),
    (
        "production",
        lambda live: container(live, "search")["env"][0].update(value="multi-node"),
        'Deployment/search: containers[search].env.discovery.type: expected value "single-node", '
        'found value "multi-node"',
    ),
    (
        "staging",
        lambda live: container(live).pop("envFrom"),
        "Deployment/backend: containers[backend].envFrom: "
        "expected [configMapRef backend-config], found none",
    ),
    (
        "production",
        _object("ConfigMap", "backend-config", lambda o: o["data"].update(LOG_LEVEL="DEBUG")),
        'ConfigMap/backend-config: data.LOG_LEVEL: expected "WARNING", found "DEBUG"',
    ),
    (
        "production",
        _object("ConfigMap", "worker-config", lambda o: o["data"].pop("S3_BUCKET")),
        'ConfigMap/worker-config: data.S3_BUCKET: expected "shop-media-production", found absent',
    ),
    (
        "staging",
        _object(
            "ConfigMap",
            "backend-config",
            lambda o: o["data"].update(DATABASE_URL=planted("DATABASE_URL")),
        ),
        "ConfigMap/backend-config: data.DATABASE_URL: expected absent, found a literal value",
    ),
    (
        "staging",
        _object("Secret", "shop-secrets", lambda o: o["data"].pop("SECRET_KEY")),
        "Secret/shop-secrets: data.SECRET_KEY: expected present, found absent",
    ),
    (
        "staging",
        _object(
            "Secret", "shop-secrets", lambda o: o["data"].update(OLD_TOKEN=o["data"]["SECRET_KEY"])
        ),
        "Secret/shop-secrets: data.OLD_TOKEN: expected absent, found present",
    ),
    (
        "staging",
        _object("Secret", "shop-secrets", lambda o: o["data"].update(SECRET_KEY="Y2hhbmdlZA==")),
        "",
    ),
    (
        "production",
        _object("Secret", "shop-secrets", lambda o: o["data"].pop("STRIPE_SECRET_KEY")),
        "Secret/shop-secrets: data.STRIPE_SECRET_KEY: expected present, found absent",
    ),
    (
        "production",
        _object(
            "ExternalSecret",
            "shop-secrets",
            lambda o: o["spec"]["data"][0]["remoteRef"].update(key="shop/production/db"),
        ),
        'ExternalSecret/shop-secrets: data.SECRET_KEY.remoteRef: expected {"key": '
        '"shop/production/django", "property": "secret_key"}, found {"key": '
        '"shop/production/db", "property": "secret_key"}',
    ),
    (
        "staging",
        _pod("terminationGracePeriodSeconds", 5),
        "Deployment/backend: terminationGracePeriodSeconds: expected 35, found 5",
    ),
    (
        "production",
        _set(["securityContext", "privileged"], True),
        "Deployment/backend: containers[backend].securityContext.privileged: "
        "expected absent, found true",
    ),
    (
        "staging",
        lambda live: find(live, "Deployment", "backend")["spec"]["template"]["spec"][
            "securityContext"
        ].update(runAsUser=0),
        "Deployment/backend: securityContext.runAsUser: expected 1000, found 0",
    ),
    (
        "staging",
        _set(["name"], "django"),
        "Deployment/backend: containers[backend]: expected present, found absent",
    ),
    (
        "production",
        _delete("Service", "backend"),
        "Service/backend: object: expected present, found absent",
    ),
    (
        "staging",
        _delete("Namespace", "shop-staging"),
        "Namespace/shop-staging: object: expected present, found absent",
    ),
]


@pytest.mark.parametrize(("environment", "change", "line"), CASES)
def test_each_drift_is_one_exact_line(
    spec: Path, tmp_path: Path, environment: str, change: Callable[[Live], None], line: str
) -> None:
    live = deployed(spec, environment)
    change(live)
    result = verify(spec, live, tmp_path, environment)
    assert result.stdout == (f"{line}\n" if line else "")
    assert result.exit_code == (1 if line else 0)


def _leaky(live: Live) -> None:
    """Every way a live object can hold a secret value, at once."""
    _literal("SECRET_KEY")(live)
    find(live, "ConfigMap", "backend-config")["data"]["DATABASE_URL"] = planted("DATABASE_URL")


@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize("output_format", ["text", "json"])
def test_no_secret_value_is_ever_shown(
    spec: Path, tmp_path: Path, environment: str, output_format: str
) -> None:
    live = deployed(spec, environment)
    _leaky(live)
    secrets = [o for o in live if o["kind"] == "Secret" and o["metadata"]["name"] == "shop-secrets"]
    assert secrets and all(secrets[0]["data"].values())
    assert planted("SECRET_KEY") in as_list(live)
    result = verify(spec, live, tmp_path, environment, "--format", output_format)
    assert result.exit_code == 1
    shown = result.stdout + result.stderr
    assert "env.SECRET_KEY" in shown and "data.DATABASE_URL" in shown
    assert "planted" not in shown
    for value in (planted(key) for key in ("SECRET_KEY", "DATABASE_URL")):
        assert base64.b64encode(value.encode()).decode() not in shown


def test_a_composed_value_written_out_is_not_shown() -> None:
    """A value composed from a secret part (``$(PART)``) that someone replaced with the whole
    value: the password it now holds is not shown."""

    def deployment(env: list[dict[str, Any]]) -> dict[str, Any]:
        container = {"name": "web", "image": "example/web:1.0.0", "env": env}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [container]}}},
        }

    password = {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "PW"}}}
    formula = "postgres://shop:$(PASSWORD)@db:5432/shop"
    expected = deployment([password, {"name": "DATABASE_URL", "value": formula}])
    written_out = formula.replace("$(PASSWORD)", planted("PASSWORD"))
    live = served(deployment([password, {"name": "DATABASE_URL", "value": written_out}]))
    (drift,) = compare([expected], [live])
    assert str(drift) == (
        f'Deployment/web: containers[web].env.DATABASE_URL: expected value "{formula}", '
        "found a literal value"
    )


def test_json_format(spec: Path, tmp_path: Path) -> None:
    live = deployed(spec, "production")
    _object("HorizontalPodAutoscaler", "backend", lambda o: o["spec"].update(maxReplicas=20))(live)
    _remove_env("SECRET_KEY")(live)
    result = verify(spec, live, tmp_path, "prod", "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report == {
        "environment": "production",
        "namespace": "shop-production",
        "objects": len(rendered(spec, "production")) + 1,
        "drift": [
            {
                "kind": "Deployment",
                "name": "backend",
                "field": "containers[backend].env.SECRET_KEY",
                "expected": "secretKeyRef shop-secrets/SECRET_KEY",
                "found": "absent",
                "line": "Deployment/backend: containers[backend].env.SECRET_KEY: "
                "expected secretKeyRef shop-secrets/SECRET_KEY, found absent",
            },
            {
                "kind": "HorizontalPodAutoscaler",
                "name": "backend",
                "field": "maxReplicas",
                "expected": "10",
                "found": "20",
                "line": "HorizontalPodAutoscaler/backend: maxReplicas: expected 10, found 20",
            },
        ],
    }
    clean = verify(spec, deployed(spec, "production"), tmp_path, "prod", "--format", "json")
    assert clean.exit_code == 0
    assert json.loads(clean.stdout)["drift"] == []


def test_standard_input_and_several_json_values(spec: Path) -> None:
    """``{ kubectl get namespace ...; kubectl get ... ; } | envspec verify --from -``"""
    live = deployed(spec, "staging")
    namespace, rest = live[0], live[1:]
    find(rest, "ConfigMap", "backend-config")["data"]["LOG_LEVEL"] = "ERROR"
    text = json.dumps(namespace, indent=4) + "\n" + as_list(rest) + "\n"
    result = CliRunner().invoke(
        cli,
        ["verify", "--env", "staging", "--from", "-", "--spec", str(spec)],
        input=text,
        obj=_Context(),
    )
    assert result.exit_code == 1
    assert result.stdout == (
        'ConfigMap/backend-config: data.LOG_LEVEL: expected "INFO", found "ERROR"\n'
    )


def test_input_that_is_not_json_is_a_positioned_error(spec: Path, tmp_path: Path) -> None:
    source = tmp_path / "live.json"
    source.write_text('{"kind": "List",\n "items": [}\n', encoding="utf-8")
    result = run("verify", "--env", "staging", "--from", str(source), "--spec", str(spec))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"envspec: {source}:2:12: not the JSON of kubectl get -o json (Expecting value)\n"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "Missing option '--env'"),
        (["--env", "staging", "--from", "nowhere.json"], "'nowhere.json' does not exist"),
        (["--env", "staging", "--format", "yaml"], "'yaml' is not one of"),
    ],
)
def test_usage_errors_exit_2(spec: Path, options: list[str], message: str) -> None:
    result = run("verify", *options, "--spec", str(spec))
    assert result.exit_code == 2
    assert message in result.stderr


def _console(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "envspec"), *args]
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=120, env=environment
    )


def test_without_kubectl_on_path(spec: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = _console(
        {"PATH": str(empty), "HOME": str(tmp_path)}, "verify", "--env", "prod", "--spec", str(spec)
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "envspec: kubectl is not on PATH: install it, or pass the live objects with --from FILE "
        "(the output of kubectl get ... -o json)\n"
    )


def test_errors_in_json_are_json(spec: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = _console(
        {"PATH": str(empty), "HOME": str(tmp_path)},
        *("verify", "--env", "prod", "--spec", str(spec), "--format", "json"),
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "error": "kubectl is not on PATH: install it, or pass the live objects with --from FILE "
        "(the output of kubectl get ... -o json)"
    }


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_cluster_and_context(spec: Path, tmp_path: Path) -> None:
    current, other = _closed_port(), _closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    clusters = {"current": current, "other": other}
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": name, "cluster": {"server": f"https://127.0.0.1:{port}"}}
                    for name, port in clusters.items()
                ],
                "contexts": [
                    {"name": name, "context": {"cluster": name, "user": "u"}} for name in clusters
                ],
                "current-context": "current",
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
            }
        ),
        encoding="utf-8",
    )
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    for options, port in (((), current), (("--context", "other"), other)):
        result = _console(environment, "verify", "--env", "prod", "--spec", str(spec), *options)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith("envspec: kubectl get failed: ")
        assert f"127.0.0.1:{port}" in result.stderr and "refused" in result.stderr
        assert "not-a-real-token" not in result.stderr


def test_a_pod_still_running_an_old_image(spec: Path, tmp_path: Path) -> None:
    live = deployed(spec, "staging")
    old = copy.deepcopy(find(live, "Deployment", "worker"))
    old["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:2.13.9"
    (stale,) = pods_of(old, 1)
    other = copy.deepcopy(stale)  # another application's pod, with labels of its own
    other["metadata"]["name"] = "other-app-5d8f9c7b6d-x2x9q"
    other["metadata"]["labels"] = {"app": "other"}
    live += [stale, other]
    result = verify(spec, live, tmp_path, "staging")
    found_id = stale["status"]["containerStatuses"][0]["imageID"].rsplit("@", 1)[-1]
    assert result.stdout == (
        f"Pod/{stale['metadata']['name']}: containers[worker].image: "
        f'expected "{IMAGE}:2.14.0@{BACKEND_DIGEST}", found "{IMAGE}:2.13.9"\n'
        f"Pod/{stale['metadata']['name']}: containers[worker].imageID: "
        f'expected "{BACKEND_DIGEST}", found "{found_id}"\n'
    )
    assert result.exit_code == 1


PINNED = "example/web:1.0.0@sha256:" + "1" * 64
WORKLOAD_SPEC = minimal(
    services={
        "web": {
            "image": "example/web",
            "version": "1.0.0",
            "digest": "sha256:" + "1" * 64,
            "user": "1000:1000",
            "shutdown": {"grace": 45, "pre_stop": 5},
            "replicas": 2,
            "ports": [8000],
        }
    },
    tasks={"migrate": {"service": "web", "command": ["migrate"], "when": "before-deploy"}},
)


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A restricted, pinned service with a shutdown pause, a disruption budget and a task."""
    return write_spec(tmp_path_factory.mktemp("workload"), WORKLOAD_SPEC)


def _web(change: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[[Live], None]:
    """A change to the web Deployment's pod spec and container."""

    def apply(live: Live) -> None:
        pod = find(live, "Deployment", "web")["spec"]["template"]["spec"]
        change(pod, pod["containers"][0])

    return apply


def _pulled(digest: str) -> Callable[[Live], None]:
    """The web pods' runtime pulled the image at ``digest``."""

    def change(live: Live) -> None:
        for pod in (o for o in live if o["kind"] == "Pod"):
            status = pod["status"]["containerStatuses"][0]
            status["imageID"] = "docker.io/example/web@" + digest

    return change


def _task_image(live: Live) -> None:
    job = next(o for o in live if o["kind"] == "Job")
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "example/web:0.9.0"


WORKLOAD_CASES: list[tuple[Callable[[Live], None], str]] = [
    (lambda live: None, ""),
    (lambda live: live.remove(next(o for o in live if o["kind"] == "Job")), ""),
    (
        _web(lambda pod, c: c.update(image="example/web:1.0.0@sha256:" + "2" * 64)),
        f'Deployment/web: containers[web].image: expected "{PINNED}", '
        f'found "example/web:1.0.0@sha256:{"2" * 64}"',
    ),
    (
        _web(lambda pod, c: pod.update(terminationGracePeriodSeconds=30)),
        "Deployment/web: terminationGracePeriodSeconds: expected 50, found 30",
    ),
    (
        _web(lambda pod, c: c.pop("lifecycle")),
        "Deployment/web: containers[web].lifecycle.preStop.sleep.seconds: expected 5, found absent",
    ),
    (
        _web(lambda pod, c: c["securityContext"].update(allowPrivilegeEscalation=True)),
        "Deployment/web: containers[web].securityContext.allowPrivilegeEscalation: "
        "expected false, found true",
    ),
    (
        _web(lambda pod, c: c["securityContext"].pop("capabilities")),
        'Deployment/web: containers[web].securityContext.capabilities.drop: expected ["ALL"], '
        "found absent",
    ),
    (
        _web(lambda pod, c: pod["securityContext"].pop("runAsNonRoot")),
        "Deployment/web: securityContext.runAsNonRoot: expected true, found absent",
    ),
    (
        _web(lambda pod, c: pod["securityContext"]["seccompProfile"].update(type="Unconfined")),
        'Deployment/web: securityContext.seccompProfile.type: expected "RuntimeDefault", '
        'found "Unconfined"',
    ),
    (
        _object(
            "Namespace",
            "demo-production",
            lambda o: o["metadata"]["labels"].update(
                {"pod-security.kubernetes.io/enforce": "baseline"}
            ),
        ),
        "Namespace/demo-production: labels.pod-security.kubernetes.io/enforce: "
        'expected "restricted", found "baseline"',
    ),
    (
        _object("PodDisruptionBudget", "web", lambda o: o["spec"].update(maxUnavailable=0)),
        "PodDisruptionBudget/web: maxUnavailable: expected 1, found 0",
    ),
    (
        _pulled("sha256:" + "3" * 64),
        "Pod/{pod}: containers[web].imageID: "
        f'expected "sha256:{"1" * 64}", found "sha256:{"3" * 64}"',
    ),
    (_pulled("sha256:" + "1" * 64), ""),
    (
        _task_image,
        f'Job/{{job}}: containers[migrate].image: expected "{PINNED}", found "example/web:0.9.0"',
    ),
]


@pytest.mark.parametrize(("change", "line"), WORKLOAD_CASES)
def test_workload_settings_drift(
    workload: Path, tmp_path: Path, change: Callable[[Live], None], line: str
) -> None:
    live = deployed(workload, "production")
    job = next(o for o in live if o["kind"] == "Job")["metadata"]["name"]
    pods = [o["metadata"]["name"] for o in live if o["kind"] == "Pod"]
    assert len(pods) == 2
    change(live)
    result = verify(workload, live, tmp_path, "production")
    lines = (
        [line.format(job=job, pod=pod) for pod in pods]
        if "{pod}" in line
        else [line.format(job=job)]
    )
    assert result.stdout == "".join(f"{text}\n" for text in lines if text)
    assert result.exit_code == (1 if line else 0)
