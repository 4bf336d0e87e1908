"""Development on a local cluster: kind, and secrets through external-secrets' fake provider."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import minimal, output_files, run, write_spec
from tests.readers import kustomize, validate_kubernetes

CANARY = "canary-kind-4f2a"
FAKE = {"mode": "external-secrets", "provider": "fake", "store": "local-secrets"}
VAULT = {"mode": "external-secrets", "store": "vault-backend"}


def _spec(development_secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = minimal(
        variables={
            "GREETING": {"default": "hello"},
            "API_TOKEN": {"secret": True},
            "DB_PASSWORD": {"secret": True},
            "FROM_SHELL": {"secret": True},
        }
    )
    development: dict[str, Any] = {"targets": ["dotenv", "kubernetes"], "local": True}
    if development_secrets is not None:
        development["secrets"] = development_secrets
    spec["environments"] = {
        "development": development,
        "production": {"targets": ["kubernetes"], "secrets": VAULT},
    }
    return spec


def _overlays(token: str = CANARY) -> dict[str, dict[str, Any]]:
    return {
        "development": {
            "variables": {
                "API_TOKEN": token,
                "DB_PASSWORD": CANARY + "-db",
                "FROM_SHELL": {"secret": "env://FROM_SHELL"},
            }
        },
        "production": {
            "variables": {
                "API_TOKEN": {"secret": "vault://app/production#token"},
                "DB_PASSWORD": {"secret": "vault://db/production#password"},
                "FROM_SHELL": {"secret": "env://FROM_SHELL"},
            }
        },
    }


def _render(root: Path, *targets: str) -> Path:
    out = root / "build"
    chosen = [option for target in targets for option in ("--target", target)]
    result = run("render", "--all", *chosen, "--spec", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def _layout(out: Path, environment: str) -> set[str]:
    folder = out / environment / "kubernetes"
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_a_local_cluster_has_production_layout_and_a_kind_config(tmp_path: Path) -> None:
    out = _render(write_spec(tmp_path, _spec(VAULT | {"provider": "fake"}), _overlays()))
    assert _layout(out, "development") == _layout(out, "production") | {"secretstore.yaml"}
    assert not (out / "production" / "kind-cluster.yaml").exists(), "only local environments"
    text = (out / "development" / "kind-cluster.yaml").read_text()
    config = yaml.safe_load(text)
    assert config == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": "demo-development",
        "nodes": [{"role": "control-plane"}],
    }
    commands = [line.strip("# ").rstrip(" \\") for line in text.splitlines() if "  " in line]
    assert "kind create cluster --config development/kind-cluster.yaml" in commands
    assert "kubectl --context kind-demo-development apply -k development/kubernetes" in commands
    assert any(c.startswith("helm install external-secrets") for c in commands)
    for command in commands:  # every path a command names is where it says, from the output
        for word in command.split():
            if word.startswith("development/"):
                assert (out / word).exists(), word
    kustomize(out / "development" / "kubernetes")


def test_kind_config_without_external_secrets_names_no_operator(tmp_path: Path) -> None:
    out = _render(write_spec(tmp_path, _spec(), _overlays()))
    text = (out / "development" / "kind-cluster.yaml").read_text()
    assert "helm" not in text
    assert "kubectl --context kind-demo-development apply -k development/kubernetes" in text


def _documents(folder: Path) -> dict[str, dict[str, Any]]:
    documents = kustomize(folder)
    for document in documents:
        validate_kubernetes(document)
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def test_fake_provider_serves_the_local_literals_through_the_production_shape(
    tmp_path: Path,
) -> None:
    out = _render(write_spec(tmp_path, _spec(FAKE), _overlays()))
    development = _documents(out / "development" / "kubernetes")
    production = _documents(out / "production" / "kubernetes")
    store = development["SecretStore/local-secrets"]
    assert store["metadata"]["namespace"] == "demo-development"
    assert store["spec"] == {
        "provider": {
            "fake": {
                "data": [
                    {"key": "API_TOKEN", "value": CANARY},
                    {"key": "DB_PASSWORD", "value": CANARY + "-db"},
                ]
            }
        }
    }
    local, remote = (
        development["ExternalSecret/demo-secrets"],
        production["ExternalSecret/demo-secrets"],
    )
    assert local["spec"]["secretStoreRef"] == {"name": "local-secrets", "kind": "SecretStore"}
    assert [d["secretKey"] for d in local["spec"]["data"]] == [
        d["secretKey"] for d in remote["spec"]["data"]
    ]
    assert local["spec"]["target"] == remote["spec"]["target"]
    assert {k: v for k, v in local["spec"].items() if k not in ("secretStoreRef", "data")} == {
        k: v for k, v in remote["spec"].items() if k not in ("secretStoreRef", "data")
    }
    assert [d["remoteRef"] for d in local["spec"]["data"]] == [
        {"key": "API_TOKEN"},
        {"key": "DB_PASSWORD"},
    ]
    plain = [d for key, d in development.items() if key.startswith("Secret/")]
    assert [d["metadata"]["name"] for d in plain] == ["demo-secrets-static"]
    assert plain[0]["stringData"] == {"FROM_SHELL": ""}, "only what a shell provides; no literal"
    container = development["Deployment/web"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
    assert refs == {
        "API_TOKEN": "demo-secrets",
        "DB_PASSWORD": "demo-secrets",
        "FROM_SHELL": "demo-secrets-static",
    }


def test_fake_provider_literals_stay_in_the_local_environment_files(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", _spec(FAKE), _overlays())
    out = _render(root)
    for path, content in output_files(out).items():
        if CANARY.encode() in content:
            assert path.startswith("development/"), path
    for command in (
        ("validate",),
        ("parity", "--format", "json"),
        ("parity", "--format", "markdown"),
        ("diff", "dev", "prod", "--format", "json"),
        ("explain", "API_TOKEN"),
    ):
        result = run(*command, "--spec", str(root))
        assert result.exit_code == 0, result.output
        assert CANARY not in result.output, command


def test_fake_provider_errors_are_positioned(tmp_path: Path) -> None:
    spec = _spec(FAKE)
    spec["environments"]["production"]["secrets"] = FAKE
    root = write_spec(tmp_path / "not-local", spec, _overlays())
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert (
        "envspec.yaml:16:14: environments.production.secrets.provider: the fake provider holds "
        "literal secrets: it is for local environments only, and 'production' is not local"
    ) in result.output.replace(str(root) + "/", "")
    cluster = _spec(FAKE | {"kind": "ClusterSecretStore"})
    root = write_spec(tmp_path / "cluster", cluster, _overlays())
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert "the fake provider's store is rendered as a SecretStore" in result.output
    skeleton = _spec({"mode": "skeleton", "provider": "fake"})
    result = run("validate", "--spec", str(write_spec(tmp_path / "skeleton", skeleton)))
    assert "'provider' belongs to mode external-secrets" in result.output
    overlays = _overlays()
    overlays["development"]["variables"]["DB_PASSWORD"] = {"secret": "vault://db/dev#password"}
    root = write_spec(tmp_path / "vault", _spec(FAKE), overlays)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert (
        "environments/development.yaml:4:5: variables.DB_PASSWORD: environment 'development' "
        "reads its secrets from the fake provider, which holds only this environment's "
        "literals; give 'DB_PASSWORD' a literal value here, or reference it with env:// or k8s://"
    ) in result.output.replace(str(root) + "/", "")
    assert CANARY not in result.output


_VALUE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from(['"', "'", "\\", "$", "#", ":", " ", "\t", "\n", "{", "*", "&"]),
    min_size=1,
    max_size=30,
)


@settings(max_examples=10, deadline=None)
@given(token=_VALUE)
def test_fake_store_values_reach_kustomize_exactly(token: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # the .env target refuses some of these values (a trailing backslash): only Kubernetes here
        out = _render(write_spec(Path(folder), _spec(FAKE), _overlays(token)), "kubernetes")
        documents = _documents(out / "development" / "kubernetes")
    data = documents["SecretStore/local-secrets"]["spec"]["provider"]["fake"]["data"]
    assert data[0] == {"key": "API_TOKEN", "value": token}
