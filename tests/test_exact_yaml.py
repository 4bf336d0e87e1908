"""Guarantee 2 for names and commands: a name that YAML 1.1 reads as a boolean or null stays a
string in every YAML file envspec writes, and a ``$`` in a Kubernetes command survives the
kubelet's ``$(NAME)`` expansion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from envspec.render.filters import kubernetes_env, yaml_scalar
from tests.helpers import minimal, run, write_spec
from tests.readers import (
    compose_config,
    compose_environment,
    compose_v1,
    compose_v2,
    kubelet_expand,
    kustomize,
    validate_kubernetes,
)

YAML_11_SPECIAL = ["ON", "NO", "Y", "N", "NULL", "TRUE", "OFF", "YES", "FALSE"]
SPECIAL_SCALARS = [
    *YAML_11_SPECIAL,
    *(word.lower() for word in YAML_11_SPECIAL),
    *(word.capitalize() for word in YAML_11_SPECIAL),
    "~",
    "",
    "0o17",
    "0x1F",
    "1_000",
    "1:20",
    ".inf",
    ".NaN",
    "<<",
    "=",
    "2001-12-14",
]


def _render(tmp_path: Path, spec: dict[str, Any]) -> Path:
    root = write_spec(tmp_path / "spec", spec)
    result = run("render", "--all", "--spec", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    return tmp_path / "out"


def test_yaml_special_names_stay_names_in_every_reader(tmp_path: Path) -> None:
    variables: dict[str, Any] = {name: {"default": name.lower()} for name in YAML_11_SPECIAL}
    variables["Y"] = {"default": "y", "secret": True}
    spec = minimal(variables=variables)
    spec["environments"] = {"development": {"targets": ["compose", "kubernetes"], "local": True}}
    folder = _render(tmp_path, spec) / "development"
    expected = {"ENVSPEC_ENVIRONMENT": "development"} | {
        name: name.lower() for name in YAML_11_SPECIAL
    }
    for binary in (compose_v2(), compose_v1()):
        assert compose_environment(compose_config(binary, folder), "web") == expected, binary
    documents = kustomize(folder / "kubernetes")
    for document in documents:
        validate_kubernetes(document)
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert config["data"] == {k: v for k, v in expected.items() if k != "Y"}
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert list(secret["stringData"]) == ["Y"]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert [e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]] == [
        "Y"
    ]
    for path in (folder / "kubernetes").rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            _assert_string_keys(document, path)


def _assert_string_keys(data: Any, path: Path) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            assert isinstance(key, str), f"{path}: key {key!r} is not a string in YAML 1.1"
            _assert_string_keys(value, path)
    elif isinstance(data, list):
        for item in data:
            _assert_string_keys(item, path)


SCALAR = st.one_of(
    st.sampled_from(SPECIAL_SCALARS),
    st.text(max_size=30),
    st.builds(lambda a, b: a + b, st.sampled_from(SPECIAL_SCALARS), st.text(max_size=5)),
)


@settings(max_examples=300)
@given(SCALAR)
def test_yaml_scalars_are_strings_in_yaml_11_and_12(text: str) -> None:
    document = f"{yaml_scalar(text)}: {yaml_scalar(text)}\n"
    assert yaml.load(document, Loader=yaml.SafeLoader) == {text: text}
    assert YAML(typ="safe", pure=True).load(document) == {text: text}


COMMAND = ["sh", "-c", "echo $(GREETING) $$ $x $( $(HOME", "$(GREETING)", "$", "$$(", "a$"]


def test_kubelet_never_expands_a_command(tmp_path: Path) -> None:
    spec = minimal(variables={"ON": {"default": "$(GREETING)"}, "GREETING": {"default": "hi"}})
    spec["services"]["web"]["command"] = COMMAND
    spec["tasks"] = {"migrate": {"service": "web", "command": COMMAND}}
    folder = _render(tmp_path, spec) / "production" / "kubernetes"
    job = yaml.safe_load((folder / "tasks" / "migrate.yaml").read_text(encoding="utf-8"))
    documents = [*kustomize(folder), job]
    environment = {"GREETING": "hello", "HOME": "/root", "x": "y"}
    for kind in ("Deployment", "Job"):
        workload = next(d for d in documents if d["kind"] == kind)
        validate_kubernetes(workload)
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert [kubelet_expand(arg, environment) for arg in container["args"]] == COMMAND, kind
        for entry in container.get("env", ()):
            if entry["name"] == "ON":
                assert kubelet_expand(entry["value"], environment) == "$(GREETING)"


@settings(max_examples=200)
@given(st.text(alphabet="$()AB x", max_size=20))
def test_kubernetes_env_survives_expansion(text: str) -> None:
    assert kubelet_expand(kubernetes_env(text), {"A": "expanded", "B": ""}) == text


HATCH_TEXT = "$HOME ${GREETING} $$ $(GREETING) a$"


def test_escape_hatch_strings_reach_every_reader_literally(tmp_path: Path) -> None:
    spec = minimal(
        variables={"GREETING": {"default": "hello"}, "TOKEN": {"secret": True, "default": "t"}}
    )
    spec["environments"] = {"development": {"targets": ["compose", "kubernetes"], "local": True}}
    spec["services"]["web"]["compose"] = {
        "environment": {"EXTRA": HATCH_TEXT},
        "labels": {"note": HATCH_TEXT},
    }
    spec["services"]["web"]["kubernetes"] = {
        "container": {"env": [{"name": "EXTRA", "value": HATCH_TEXT}], "args": [HATCH_TEXT]},
        "pod": {
            "initContainers": [{"name": "init", "image": "busybox:1.36", "command": [HATCH_TEXT]}]
        },
    }
    folder = _render(tmp_path, spec) / "development"
    for binary in (compose_v2(), compose_v1()):
        data = compose_config(binary, folder, {"HOME": "/home/x", "GREETING": "shell"})
        assert compose_environment(data, "web")["EXTRA"] == HATCH_TEXT, binary
        labels = data["services"]["web"]["labels"]
        assert str(labels["note"]).replace("$$", "$") == HATCH_TEXT, binary
    deployment = next(d for d in kustomize(folder / "kubernetes") if d["kind"] == "Deployment")
    validate_kubernetes(deployment)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    environment = {"GREETING": "hello", "HOME": "/root"}
    env = {entry["name"]: entry for entry in container["env"]}
    assert set(env) == {"TOKEN", "EXTRA"}, "the escape hatch adds to envspec's env"
    assert kubelet_expand(env["EXTRA"]["value"], environment) == HATCH_TEXT
    assert [kubelet_expand(arg, environment) for arg in container["args"]] == [HATCH_TEXT]
    init = pod["initContainers"][0]
    assert [kubelet_expand(arg, environment) for arg in init["command"]] == [HATCH_TEXT]
