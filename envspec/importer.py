"""``envspec init``: a starter spec, or a spec imported from a compose file and its .env files.

Import maps each compose service onto the spec (image and tag, command, ports, depends_on,
healthcheck, named volumes) and keeps what the spec has no field for (build contexts, profiles,
bind mounts, restart policies, ...) in the service's ``compose:`` escape hatch, so rendering the
development environment gives back an equivalent compose file. Variables get an inferred type and
their value per environment; likely secrets become secret variables whose value stays a literal in
development and becomes a ``vault://TODO/...`` reference elsewhere.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from envspec.errors import EnvspecError
from envspec.loader import check_yaml
from envspec.location import display_path
from envspec.models import VARIABLE_NAME, dns_label
from envspec.render.filters import to_yaml

SCHEMA_FILE = "envspec.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema={path}\n"
_SECRET_NAME = re.compile(r"(^|_)(KEY|SECRET|PASSWORD|PASSWD|PASS|TOKEN|CREDENTIALS?)($|_)")
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.I)
_INTERPOLATION = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)
_VOLUME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}"
_MAPPED = {
    "image",
    "build",
    "command",
    "ports",
    "depends_on",
    "healthcheck",
    "volumes",
    "environment",
    "env_file",
}


def project_name(folder: Path) -> str:
    return dns_label(folder.resolve().name) or "app"


def starter(project: str) -> dict[str, str]:
    """The files of a new, valid spec with one local and one Kubernetes environment."""
    base = (
        SCHEMA_LINE.format(path=SCHEMA_FILE)
        + f"""version: 1
project: {project}

environments:
  development: {{targets: [dotenv, compose], local: true}}
  production: {{targets: [kubernetes]}}

services:
  app:
    image: example/{project}
    version: "0.1.0"
    ports: [8000]

variables:
  LOG_LEVEL:
    type: enum
    choices: [DEBUG, INFO, WARNING, ERROR]
    default: INFO
    description: Root log level.
"""
    )
    overlay = SCHEMA_LINE.format(path=f"../{SCHEMA_FILE}")
    return {
        "envspec.yaml": base,
        "environments/development.yaml": overlay + "variables:\n  LOG_LEVEL: DEBUG\n",
        "environments/production.yaml": overlay + "variables: {}\n",
    }


@dataclass
class _Variable:
    name: str
    values: dict[str, str | None] = field(default_factory=dict)

    @property
    def secret(self) -> bool:
        return bool(_SECRET_NAME.search(self.name)) or any(
            value is not None and _URL_PASSWORD.match(value) for value in self.values.values()
        )


def from_compose(
    compose: Path, env_files: list[Path], project: str | None, spec_folder: Path
) -> dict[str, str]:
    """The files of a spec imported from ``compose`` and ``env_files`` (first: development).

    Relative paths (build contexts, bind mounts) are rewritten to work from the folder the
    development compose file is rendered into, ``<spec>/build/development``.
    """
    try:
        text = compose.read_text(encoding="utf-8")
    except OSError as error:
        raise EnvspecError(f"{compose}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise EnvspecError(f"{compose}: not UTF-8 (byte {error.start})") from None
    check_yaml(text, display_path(compose))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise EnvspecError(f"{compose}{where}: not a compose file: {problem}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise EnvspecError(f"{compose}: no 'services' mapping")
    environments = _environments(compose, env_files)
    name = dns_label(project or str(data.get("name") or compose.resolve().parent.name)) or "app"
    named_volumes = set(data.get("volumes") or {})
    variables: dict[str, _Variable] = {}
    services: dict[str, Any] = {}
    for service_name, service in data["services"].items():
        services[dns_label(service_name)] = _service(
            f"{name}/{dns_label(service_name)}",
            service or {},
            environments=environments,
            named_volumes=named_volumes,
            variables=variables,
            folder=compose.parent,
            rendered_in=spec_folder / "build" / "development",
        )
    return _files(name, environments, services, variables)


def _environments(compose: Path, env_files: list[Path]) -> dict[str, dict[str, str]]:
    if not env_files and (compose.parent / ".env").is_file():
        env_files = [compose.parent / ".env"]
    environments: dict[str, dict[str, str]] = {}
    for index, path in enumerate(env_files):
        suffix = path.name.removeprefix(".env").lstrip(".")
        environment = "development" if index == 0 else dns_label(suffix or path.stem)
        if not path.is_file():
            raise EnvspecError(f"{path}: no such .env file")
        values = dotenv_values(path, interpolate=False)
        environments[environment] = {k: v for k, v in values.items() if v is not None}
    return environments or {"development": {}}


def _service(
    built_image: str,
    service: Mapping[str, Any],
    *,
    environments: dict[str, dict[str, str]],
    named_volumes: set[str],
    variables: dict[str, _Variable],
    folder: Path,
    rendered_in: Path,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    escape: dict[str, Any] = {key: value for key, value in service.items() if key not in _MAPPED}
    image = service.get("image")
    if image:
        result["image"], result["version"] = _split_image(str(image))
    else:
        result["image"], result["version"] = built_image, "dev"
    if "build" in service:
        build = service["build"]
        if isinstance(build, str):
            escape["build"] = _relocated(build, folder, rendered_in)
        else:
            escape["build"] = {
                **build,
                "context": _relocated(build.get("context", "."), folder, rendered_in),
            }
    command = service.get("command")
    if command:
        result["command"] = shlex.split(command) if isinstance(command, str) else list(command)
    ports, raw_ports = _ports(service.get("ports") or [])
    if raw_ports:
        escape["ports"] = service["ports"]
    elif ports:
        result["ports"] = ports
    depends = service.get("depends_on") or []
    if depends:
        result["depends_on"] = [dns_label(str(d)) for d in depends]
    check = _healthcheck(service.get("healthcheck"))
    if check:
        result["healthcheck"] = check
    volumes, keep_raw = _volumes(service.get("volumes") or [], named_volumes)
    if volumes:
        result["volumes"] = volumes
    if keep_raw:
        escape["volumes"] = [_relocated_mount(v, folder, rendered_in) for v in service["volumes"]]
    received, odd = _service_variables(service, environments, variables, folder)
    result["variables"] = received
    if odd:
        escape["environment"] = odd
    if escape:
        result["compose"] = escape
    return result


def _relocated(path: str, folder: Path, rendered_in: Path) -> str:
    if not path.startswith("."):
        return path
    return os.path.relpath((folder / path).resolve(), rendered_in.resolve())


def _relocated_mount(volume: Any, folder: Path, rendered_in: Path) -> Any:
    if isinstance(volume, str) and volume.startswith("."):
        source, _, rest = volume.partition(":")
        return f"{_relocated(source, folder, rendered_in)}:{rest}"
    return volume


def _split_image(image: str) -> tuple[str, str | None]:
    repository, _, tag = image.rpartition(":")
    if repository and "/" not in tag:
        return repository, tag
    return image, None


def _ports(ports: list[Any]) -> tuple[list[Any], bool]:
    result: list[Any] = []
    for port in ports:
        if isinstance(port, int):
            result.append(port)
            continue
        if isinstance(port, dict):
            if set(port) - {"target", "published", "protocol"}:
                return [], True
            entry = {"port": int(port["target"])}
            if port.get("published"):
                entry["host"] = int(port["published"])
            result.append(entry)
            continue
        text, _, protocol = str(port).partition("/")
        parts = text.split(":")
        if len(parts) > 2 or any(not part.isdigit() for part in parts):
            return [], True
        container = int(parts[-1])
        host = int(parts[0]) if len(parts) == 2 else None
        entry2: dict[str, Any] = {"port": container}
        if host is not None and host != container:
            entry2["host"] = host
        if protocol.upper() == "UDP":
            entry2["protocol"] = "UDP"
        result.append(container if set(entry2) == {"port"} else entry2)
    return result, False


def _healthcheck(check: Any) -> dict[str, Any] | None:
    if not isinstance(check, dict) or check.get("disable") or "test" not in check:
        return None
    test = check["test"]
    if isinstance(test, str):
        command = ["sh", "-c", test]
    elif test and test[0] == "CMD":
        command = [str(part) for part in test[1:]]
    elif test and test[0] == "CMD-SHELL":
        command = ["sh", "-c", " ".join(str(part) for part in test[1:])]
    else:
        return None
    result: dict[str, Any] = {"command": command}
    for key in ("interval", "timeout", "start_period"):
        if key in check:
            result[key] = _seconds(str(check[key]))
    if "retries" in check:
        result["retries"] = int(check["retries"])
    return result


def _seconds(duration: str) -> int:
    total = 0.0
    for amount, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", duration):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return max(1, round(total)) if total else int(float(duration or 0))


def _volumes(volumes: list[Any], named: set[str]) -> tuple[dict[str, str], bool]:
    result: dict[str, str] = {}
    raw = False
    for volume in volumes:
        source, _, target = str(volume).partition(":") if isinstance(volume, str) else ("", "", "")
        target = target.split(":")[0]
        if source in named and re.fullmatch(_VOLUME, source) and target.startswith("/"):
            result[source] = target
        else:
            raw = True
    return result, raw


def _service_variables(
    service: Mapping[str, Any],
    environments: dict[str, dict[str, str]],
    variables: dict[str, _Variable],
    folder: Path,
) -> tuple[list[str], dict[str, str]]:
    raw: dict[str, str | None] = {}
    env_files = service.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
        path = entry["path"] if isinstance(entry, dict) else entry
        for key, value in dotenv_values(folder / str(path), interpolate=False).items():
            raw[key] = value
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(
            item.split("=", 1) if "=" in item else (item, None) for item in environment
        )
    raw.update({key: None if value is None else _text(value) for key, value in environment.items()})
    received: list[str] = []
    odd: dict[str, str] = {}
    for key, value in raw.items():
        if not re.fullmatch(VARIABLE_NAME, key):
            odd[key] = "" if value is None else value
            continue
        variable = variables.setdefault(key, _Variable(key))
        for name, values in environments.items():
            resolved = values.get(key) if value is None else _interpolate(value, values)
            if name == "development" or key in values or value is not None:
                variable.values.setdefault(name, resolved)
        received.append(key)
    return received, odd


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _interpolate(value: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group() == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2), match.group(3) or ""
        found = values.get(name)
        if operator and operator.startswith(":") and not found:
            return default if operator == ":-" else ""
        if operator == "-" and found is None:
            return default
        return found or ""

    return _INTERPOLATION.sub(replace, value)


def _type(values: list[str]) -> str:
    present = [value for value in values if value]
    if present and all(value.lower() in {"true", "false"} for value in present):
        return "bool"
    if present and all(re.fullmatch(r"-?[0-9]+", value) for value in present):
        return "int"
    if present and all(re.match(r"^[a-z][a-z0-9+.-]*://\S+$", value, re.I) for value in present):
        return "url"
    return "str"


def _files(
    project: str,
    environments: dict[str, dict[str, str]],
    services: dict[str, Any],
    variables: dict[str, _Variable],
) -> dict[str, str]:
    spec_variables: dict[str, Any] = {}
    overlays: dict[str, dict[str, Any]] = {name: {} for name in environments}
    for name, variable in variables.items():
        entry: dict[str, Any] = {}
        kind = _type([v for v in variable.values.values() if v is not None])
        if kind != "str":
            entry["type"] = kind
        development = variable.values.get("development")
        if variable.secret:
            entry["secret"] = True
            for environment in environments:
                value = variable.values.get(environment)
                if environment == "development":
                    overlays[environment][name] = value or ""
                else:
                    overlays[environment][name] = {
                        "secret": f"vault://TODO/{project}/{environment}#{name}"
                    }
        else:
            entry["default"] = development or ""
            for environment in environments:
                value = variable.values.get(environment)
                if environment != "development" and value is not None and value != development:
                    overlays[environment][name] = value
        spec_variables[name] = entry
    base: dict[str, Any] = {
        "version": 1,
        "project": project,
        "environments": {
            name: {"targets": ["dotenv", "compose"], "local": name == "development"}
            for name in environments
        },
        "services": services,
        "variables": spec_variables,
    }
    header = SCHEMA_LINE.format(path=SCHEMA_FILE) + "# Imported by envspec init --from-compose.\n"
    overlay_header = SCHEMA_LINE.format(path=f"../{SCHEMA_FILE}")
    files = {"envspec.yaml": header + to_yaml(base)}
    for name, values in overlays.items():
        files[f"environments/{name}.yaml"] = overlay_header + to_yaml({"variables": values})
    return files
