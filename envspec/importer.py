"""``envspec init``: a starter spec, or a spec imported from a compose file and its .env files.

Import reads the compose file the way Compose does (interpolation resolved with the development
.env file, ``$$`` a literal ``$``, relative paths seen from the compose file's folder) and maps
each service onto the spec: image, tag, command, ports, depends_on, healthcheck, named volumes
and variables. Whatever the spec cannot say exactly is kept, as written, in the service's
``compose:`` escape hatch (or the spec's top-level ``compose:``), so that rendering development
gives back an equivalent compose file. What cannot be carried at all is refused with its
position; what is carried only partly (compose only, or only for development) is listed in the
summary. Likely secrets become secret variables: a literal in development, a placeholder
reference (``vault://TODO/...``) elsewhere. Where services give one variable different values,
the value most of them share is the environment's and the others are the services' own
(``services.<svc>.values``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from envspec.errors import EnvspecError, Problem, SpecError
from envspec.loader import check_yaml, load_yaml_text
from envspec.location import SourceMap, SpecPath, display_path, dotted
from envspec.models import (
    DIGEST,
    ENVIRONMENT_VARIABLE,
    IMAGE_TAG,
    SERVICE_NAME,
    SIGNAL,
    VARIABLE_NAME,
    dns_label,
)
from envspec.render.filters import to_yaml
from envspec.resolve import is_url
from envspec.secrets import PLACEHOLDER_PATH

SCHEMA_FILE = "envspec.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema={path}\n"

_SECRET_WORD = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|PRIVATE|CREDENTIAL")
_SECRET_PART = re.compile(r"(^|_)(KEY|APIKEY|PASS|PWD|AUTH)($|_)")
_NOT_SECRET = re.compile(
    r"_(FILE|PATH|DIR|TTL|EXPIRY|EXPIRES|EXPIRE|LIFETIME|LENGTH|TIMEOUT|HEADER|NAME|ALGORITHM|TYPE)$"
)
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.I)
_HOST_VARIABLE = re.compile(r"(^|_)(HOST|HOSTNAME|HOSTS|ADDR|ADDRESS|SERVER|SERVERS|ENDPOINT)($|_)")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[!-~]+")
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)"
    r"|\{(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?].*)?)\}|(?P<invalid>)))",
    re.IGNORECASE,
)
_OPERATORS = (":?", "?", ":-", "-", ":+", "+")
_VOLUME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|ns)")
_SECONDS = re.compile(r"([1-9][0-9]*|0)s")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_TOP_LEVEL = ("networks", "volumes", "secrets", "configs")
_MAPPED = {"image", "command", "environment", "env_file"}


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


def is_secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret (``*_FILE``, a path to one, does not)."""
    if _NOT_SECRET.search(name):
        return False
    return bool(_SECRET_WORD.search(name) or _SECRET_PART.search(name))


@dataclass
class Imported:
    """The spec's files and the summary of what was imported, renamed and not carried."""

    files: dict[str, str]
    summary: list[str]


@dataclass
class _EnvFile:
    environment: str
    path: Path
    values: dict[str, str]
    lines: dict[str, int]
    used: set[str] = field(default_factory=set)


@dataclass
class _Variable:
    name: str
    by_service: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each receiving service's value in each environment, services in file order; an
    environment without one gives the service the environment-wide value there."""
    from_secret: bool = False

    @property
    def secret(self) -> bool:
        return (
            self.from_secret
            or is_secret_name(self.name)
            or any(_URL_PASSWORD.match(value) for value in self.all_values())
        )

    def all_values(self) -> Iterator[str]:
        for values in self.by_service.values():
            yield from values.values()

    def shared(self, environment: str) -> str | None:
        """The environment-wide value: the one most services have there, the first in file
        order on a tie; the other services get their own values."""
        found = [own[environment] for own in self.by_service.values() if environment in own]
        counts = Counter(found)
        return max(found, key=counts.__getitem__, default=None)


class _RefusalError(Exception):
    def __init__(self, path: SpecPath, message: str, *, at_key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.at_key = at_key
        """Whether the key at ``path`` is at fault (its name), not its value."""


def from_compose(
    compose: Path, env_files: list[Path], project: str | None, spec_folder: Path
) -> Imported:
    """The spec imported from ``compose`` and ``env_files`` (the first is development).

    Relative paths (build contexts, bind mounts, ``extends`` files, top-level ``file:``) are
    rewritten to point where they pointed, seen from ``<spec>/build/development``.
    """
    data, source = _read(compose)
    importer = _Importer(
        compose, _env_files(compose, env_files), spec_folder / "build" / "development"
    )
    try:
        return importer.run(data, project)
    except _RefusalError as refusal:
        position = (source.key if refusal.at_key else source.value)(refusal.path)
        raise SpecError(
            [
                Problem(
                    position.file,
                    position.line,
                    position.column,
                    dotted(refusal.path),
                    f"cannot import: {refusal.message}",
                )
            ]
        ) from None


def _read(compose: Path) -> tuple[dict[str, Any], SourceMap]:
    try:
        text = compose.read_text(encoding="utf-8")
    except OSError as error:
        raise EnvspecError(f"{compose}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise EnvspecError(f"{compose}: not UTF-8 (byte {error.start})") from None
    check_yaml(text, display_path(compose))  # the loader's bounds: size, aliases, depth
    document = load_yaml_text(text, display_path(compose))  # positions
    data = yaml.safe_load(text)  # typed scalars, as Compose reads them
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise EnvspecError(f"{compose}: no 'services' mapping")
    return data, document.source


def _env_files(compose: Path, paths: list[Path]) -> list[_EnvFile]:
    if not paths and (compose.parent / ".env").is_file():
        paths = [compose.parent / ".env"]
    found: list[_EnvFile] = []
    for index, path in enumerate(paths):
        if not path.is_file():
            raise EnvspecError(f"{path}: no such .env file")
        suffix = path.name.removeprefix(".env").lstrip(".")
        environment = "development" if index == 0 else dns_label(suffix or path.stem)
        if any(other.environment == environment for other in found):
            raise EnvspecError(f"{path}: a second .env file for environment '{environment}'")
        values, lines = _dotenv(path)
        found.append(_EnvFile(environment, path.resolve(), values, lines))
    return found or [_EnvFile("development", compose.parent / ".env", {}, {})]


def _dotenv(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    values = {k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None}
    lines: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=", line)
        if match:
            lines.setdefault(match.group(1), number)
    return values, lines


class _Importer:
    def __init__(self, compose: Path, env_files: list[_EnvFile], rendered_in: Path) -> None:
        self.compose = compose
        self.folder = compose.parent.resolve()
        self.env_files = env_files
        self.development = env_files[0]
        self.rendered_in = rendered_in.resolve()
        self.variables: dict[str, _Variable] = {}
        self.overlays: dict[str, dict[str, Any]] = {e.environment: {} for e in env_files}
        self.notes: list[str] = []
        self.renames: dict[str, str] = {}
        self.unset: dict[str, str] = {}
        self.interpolated: list[str] = []
        self.own: dict[str, dict[str, list[str]]] = {}
        """The services with their own value of a variable, and in which environments."""

    # -- the whole file ---------------------------------------------------------------------

    def run(self, data: dict[str, Any], project: str | None) -> Imported:
        name = dns_label(project or str(data.get("name") or self.folder.name)) or "app"
        for key in data:
            if key not in ("services", "name", "version", *_TOP_LEVEL) and not key.startswith("x-"):
                raise _RefusalError(
                    (key,), f"top-level '{key}' has no counterpart in the spec", at_key=True
                )
        services_data = data["services"]
        _walk(data, lambda text, where: _names(text, self.interpolated), ())
        for service in services_data:
            label = dns_label(str(service))
            if not re.fullmatch(SERVICE_NAME, label):
                raise _RefusalError(
                    ("services", service),
                    "the service name has no DNS-label form that starts with a letter",
                    at_key=True,
                )
            if label in self.renames.values():
                raise _RefusalError(
                    ("services", service),
                    f"two services would both be named '{label}'",
                    at_key=True,
                )
            self.renames[str(service)] = label
        services: dict[str, Any] = {}
        for service, body in services_data.items():
            if body is not None and not isinstance(body, dict):
                raise _RefusalError(("services", service), "a service must be a mapping")
            services[self.renames[str(service)]] = self.service(str(service), body or {})
        top: dict[str, Any] = {}
        for key in _TOP_LEVEL:
            if data.get(key):
                resolved = self.escaped((key,), data[key])
                top[key] = (
                    self.relocated_files(resolved) if key in ("secrets", "configs") else resolved
                )
        if top:
            self.notes.append(
                f"top-level {', '.join(top)}: carried for compose (spec 'compose:'); Kubernetes "
                "has no counterpart for them, give its manifests their own"
            )
        self.reachability(services_data, services)
        self.unused()
        return Imported(self.files(name, services, top), self.summary(services))

    def unused(self) -> None:
        for env_file in self.env_files:
            for key in env_file.values:
                if key in env_file.used:
                    continue
                where = f"{display_path(env_file.path)}:{env_file.lines.get(key, 1)}: {key}"
                if key in self.variables:
                    self.notes.append(
                        f"{where}: not carried: the services that receive it interpolate their "
                        "own value in the compose file, and compose reads that"
                    )
                else:
                    self.notes.append(
                        f"{where}: not carried: no service receives it and the compose file does "
                        "not use it"
                    )

    # -- one service ------------------------------------------------------------------------

    def service(self, original: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = self.renames[original]
        path: SpecPath = ("services", original)
        result: dict[str, Any] = {}
        escape: dict[str, Any] = {}
        for key, value in body.items():
            if key in _MAPPED:
                continue
            escape[key] = self.escaped((*path, key), value)
        self.image(path, name, body, result, escape)
        self.shutdown(name, escape, result)
        if "command" in body and body["command"] is not None:
            self.command(path, name, body["command"], result, escape)
        self.other_environments(path, name, body)
        for key, mapper in (
            ("ports", self.ports),
            ("depends_on", self.depends_on),
            ("healthcheck", self.healthcheck),
            ("volumes", self.volumes),
        ):
            if key in escape:
                mapper((*path, key), escape, result)
        if "build" in escape:
            escape["build"] = self.relocated_build(escape["build"])
        if isinstance(escape.get("extends"), dict) and "file" in escape["extends"]:
            escape["extends"] = {
                **escape["extends"],
                "file": self.relocated(escape["extends"]["file"]),
            }
            self.notes.append(
                f"services.{name}.extends: carried for compose; the variables of the service it "
                "extends are not in the spec"
            )
        for key in ("links", "volumes_from"):
            if isinstance(escape.get(key), list):
                escape[key] = [self.renamed_reference(str(item)) for item in escape[key]]
        if isinstance(escape.get("network_mode"), str):
            escape["network_mode"] = self.renamed_reference(escape["network_mode"])
        if body.get("entrypoint"):
            entrypoint = self.resolved((*path, "entrypoint"), body["entrypoint"])
            words = shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint
            command = [_scalar_text(word) for word in words]
            result["kubernetes"] = {"container": {"command": command}}
        result["variables"] = self.service_variables(path, name, body, escape)
        result["values"] = {}  # the service's own, where they differ (see own_values)
        for key, value in body.items():
            if key in escape and key != "environment" and self.secret_used((*path, key), value):
                literal = self.escaped((*path, key), value, keep_secrets=False)
                if key == "build":
                    literal = self.relocated_build(literal)
                patch = self.service_overlay(self.development.environment, name)
                patch.setdefault("compose", {})[key] = literal
                self.notes.append(
                    f"services.{name}.{key}: uses a secret: development's value is in "
                    f"environments/{self.development.environment}.yaml, other environments "
                    "take it from the shell"
                )
        if escape:
            result["compose"] = escape
        return result

    def image(
        self,
        path: SpecPath,
        name: str,
        body: Mapping[str, Any],
        result: dict[str, Any],
        escape: dict[str, Any],
    ) -> None:
        if body.get("image") is None:
            result["image"], result["version"] = f"{name}", "dev"
            self.notes.append(
                f"services.{name}: built, no image: named '{name}:dev' (compose tags the build so)"
            )
            return
        values = self.per_environment((*path, "image"), body["image"])
        development = values[self.development.environment]
        repository, version, digest, exact = _split_image(development)
        if repository is None:
            raise _RefusalError((*path, "image"), "not an image reference envspec can name")
        result["image"] = repository
        if version is not None:
            result["version"] = version
        if digest is not None:
            result["digest"] = digest
        if not exact:
            escape["image"] = development
        for environment, value in values.items():
            if value != development:
                other, other_version, other_digest, other_exact = _split_image(value)
                patch: dict[str, Any] = {}
                for key, mine, theirs in (
                    ("image", repository, other),
                    ("version", version, other_version),
                    ("digest", digest, other_digest),
                ):
                    if mine != theirs:
                        patch[key] = theirs
                        self.declare(environment, f"services.{name}.{key}")
                if not other_exact or not exact:
                    patch["compose"] = {"image": value}
                self.service_overlay(environment, name).update(patch)

    def shutdown(self, name: str, escape: dict[str, Any], result: dict[str, Any]) -> None:
        """compose's stop_grace_period (10s when not given) and stop_signal as the spec's
        ``shutdown``, which both targets render."""
        grace = escape.pop("stop_grace_period", "10s")
        seconds = _seconds(grace)
        shutdown: dict[str, Any] = {"grace": max(1, round(seconds if seconds is not None else 10))}
        if seconds is None or not _SECONDS.fullmatch(str(grace)) or seconds < 1:
            escape["stop_grace_period"] = grace
            self.notes.append(
                f"services.{name}.stop_grace_period: {grace} kept for compose; "
                f"Kubernetes gets {shutdown['grace']}s"
            )
        signal = escape.get("stop_signal")
        if isinstance(signal, str) and re.fullmatch(SIGNAL, signal):
            shutdown["signal"] = escape.pop("stop_signal")
        result["shutdown"] = shutdown

    def command(
        self,
        path: SpecPath,
        name: str,
        command: Any,
        result: dict[str, Any],
        escape: dict[str, Any],
    ) -> None:
        spec, written = self.command_in(path, command, self.development)
        if spec is not None:
            result["command"] = spec
        if written is not None:
            escape["command"] = written
        for env_file in self.env_files[1:]:
            other, other_written = self.command_in(path, command, env_file)
            if (other, other_written) != (spec, written):
                patch = self.service_overlay(env_file.environment, name)
                if other is not None:
                    patch["command"] = other
                if other_written is not None:
                    patch.setdefault("compose", {})["command"] = other_written

    def command_in(
        self, path: SpecPath, command: Any, env_file: _EnvFile
    ) -> tuple[list[str] | None, Any]:
        """The spec's command and, where the spec's rendering differs, compose's own."""
        where: SpecPath = (*path, "command")
        if self.secret_used(where, command):
            return None, self.escaped(where, command)
        resolved = self.resolved(where, command, env_file)
        if isinstance(resolved, str):
            try:
                words = shlex.split(resolved)
            except ValueError:
                raise _RefusalError(where, "the command's quotes do not close") from None
            return words, resolved  # compose splits it its own way
        if isinstance(resolved, list):
            words = [_scalar_text(part) for part in resolved]
            exact = all(isinstance(part, str) for part in resolved)
            return words, None if exact else words
        raise _RefusalError(where, "a command is a string or a list")

    def other_environments(self, path: SpecPath, name: str, body: Mapping[str, Any]) -> None:
        """Report what another environment's .env file would change outside the spec's fields."""
        for key, value in body.items():
            if key in ("image", "command", "environment", "env_file"):
                continue
            where: SpecPath = (*path, key)
            development = self.resolved(where, value)
            for env_file in self.env_files[1:]:
                if self.resolved(where, value, env_file) != development:
                    self.notes.append(
                        f"services.{name}.{key}: {env_file.path.name} changes it; not carried for "
                        f"{env_file.environment} (the spec has development's)"
                    )

    def ports(self, path: SpecPath, escape: dict[str, Any], result: dict[str, Any]) -> None:
        ports = escape["ports"]
        if not isinstance(ports, list):
            return
        exact: list[Any] = []
        for port in ports:
            match = re.fullmatch(r"([0-9]+):([0-9]+)(/udp)?", port if isinstance(port, str) else "")
            if match is None:
                break
            host, container = int(match.group(1)), int(match.group(2))
            entry: dict[str, Any] = {"port": container}
            if host != container:
                entry["host"] = host
            if match.group(3):
                entry["protocol"] = "UDP"
            exact.append(container if set(entry) == {"port"} else entry)
        else:
            if all(1 <= (p if isinstance(p, int) else p["port"]) <= 65535 for p in exact):
                result["ports"] = exact
                del escape["ports"]
                return
        targets = [_container_port(port) for port in ports]
        if all(target is not None for target in targets):
            result["ports"] = _spec_ports([t for t in targets if t is not None])
        # compose keeps the ports as written; the spec has the container's, for Kubernetes

    def reachability(self, original: Mapping[str, Any], services: dict[str, Any]) -> None:
        """Give a port to each service that others reach by name, so that Kubernetes gets a
        Service of that name: from ``expose``, else from ``host:port`` in the values that
        name it. compose keeps publishing nothing (``ports: []``)."""
        values = [
            (variable.name, value)
            for variable in self.variables.values()
            for value in variable.all_values()
        ]
        for source_name, body in original.items():
            name = self.renames[str(source_name)]
            service = services[name]
            if service.get("ports"):
                continue
            users = [
                other for other, spec in services.items() if name in (spec.get("depends_on") or [])
            ]
            named = [port for key, value in values for port in _hosted(name, key, value)]
            if not users and not named:
                continue
            exposed = [_container_port(port) for port in (body or {}).get("expose") or []]
            found = [port for port in exposed if port is not None] or [
                (port, "tcp") for port in named if port is not None
            ]
            found = list(dict.fromkeys(port for port in found if 1 <= port[0] <= 65535))
            if not found:
                self.notes.append(
                    f"services.{name}: reached by name, but no port is known: Kubernetes gets "
                    f"no Service for it; give services.{name} its ports (and compose: "
                    "{ports: []} to publish none)"
                )
                continue
            service["ports"] = _spec_ports(found)
            service.setdefault("compose", {}).setdefault("ports", [])
            if "ports" not in (body or {}):
                self.notes.append(
                    f"services.{name}: reached by name: ports {', '.join(str(p) for p, _ in found)}"
                    " for its Kubernetes Service (compose publishes none, as before)"
                )

    def depends_on(self, path: SpecPath, escape: dict[str, Any], result: dict[str, Any]) -> None:
        depends = escape["depends_on"]
        if isinstance(depends, list):
            depends = {str(d): {"condition": "service_started"} for d in depends}
        if not isinstance(depends, dict):
            raise _RefusalError(path, "depends_on must be a list or a mapping")
        for dependency in depends:
            if str(dependency) not in self.renames:
                raise _RefusalError((*path, dependency), f"no service '{dependency}' in the file")
        result["depends_on"] = [self.renames[str(d)] for d in depends]
        escape["depends_on"] = {
            self.renames[str(d)]: condition if condition is not None else {}
            for d, condition in depends.items()
        }

    def healthcheck(self, path: SpecPath, escape: dict[str, Any], result: dict[str, Any]) -> None:
        check = escape["healthcheck"]
        if not isinstance(check, dict) or check.get("disable") or "test" not in check:
            return
        test = check["test"]
        if isinstance(test, str):
            command = ["sh", "-c", test]
        elif isinstance(test, list) and test and test[0] == "CMD" and len(test) > 1:
            command = [str(part) for part in test[1:]]
        elif isinstance(test, list) and test and test[0] == "CMD-SHELL" and len(test) > 1:
            command = ["sh", "-c", " ".join(str(part) for part in test[1:])]
        else:
            return
        spec: dict[str, Any] = {"command": command}
        exact = isinstance(test, list) and test[0] == "CMD"
        for key, default in (("interval", 30), ("timeout", 30), ("start_period", 0)):
            seconds = _seconds(check.get(key))
            if key in check and seconds is None:
                return  # not a duration envspec reads: compose keeps it as written
            spec[key] = max(1 if key != "start_period" else 0, round(seconds or default))
            if key in check and not _SECONDS.fullmatch(str(check[key])):
                exact = False
        retries = check.get("retries", 3)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
            return
        spec["retries"] = retries
        exact = exact and not set(check) - {
            "test",
            "interval",
            "timeout",
            "start_period",
            "retries",
        }
        result["healthcheck"] = spec
        if exact:
            del escape["healthcheck"]

    def volumes(self, path: SpecPath, escape: dict[str, Any], result: dict[str, Any]) -> None:
        volumes = escape["volumes"]
        if not isinstance(volumes, list):
            return
        named: dict[str, str] = {}
        exact = True
        relocated: list[Any] = []
        for volume in volumes:
            if isinstance(volume, str):
                source, _, rest = volume.partition(":")
                if (
                    _VOLUME.fullmatch(source)
                    and re.fullmatch(r"/[^:]*", rest)
                    and source not in named
                ):
                    named[source] = rest
                else:
                    exact = False
                relocated.append(
                    f"{self.relocated(source)}:{rest}" if source.startswith(".") else volume
                )
                continue
            exact = False
            if isinstance(volume, dict) and volume.get("type") == "bind":
                bound = volume.get("source")
                if isinstance(bound, str):
                    relocated.append({**volume, "source": self.relocated(bound)})
                    continue
            relocated.append(volume)
        if named:
            result["volumes"] = named
        if exact:
            del escape["volumes"]
        else:
            escape["volumes"] = relocated

    # -- variables --------------------------------------------------------------------------

    def service_variables(
        self, path: SpecPath, name: str, body: Mapping[str, Any], escape: dict[str, Any]
    ) -> list[str]:
        """Each variable the service receives, with its value in every environment."""
        written: dict[str, tuple[Any, SpecPath]] = {}
        for key, value in self.env_file_entries(path, body.get("env_file")):
            written[key] = (value, (*path, "env_file"))
        environment = body.get("environment") or {}
        if isinstance(environment, list):
            pairs = [str(item).split("=", 1) for item in environment]
            environment = {pair[0]: pair[1] if len(pair) == 2 else None for pair in pairs}
        for index, (key, value) in enumerate(environment.items()):
            where: SpecPath = (
                *path,
                "environment",
                key if isinstance(body.get("environment"), dict) else index,
            )
            written[str(key)] = (None if value is None else _scalar_text(value), where)
        shares_env_file = self.shares_env_file(body.get("env_file"))
        received: list[str] = []
        odd: dict[str, Any] = {}
        for key, (value, where) in written.items():
            if key == ENVIRONMENT_VARIABLE:
                continue  # envspec's own, in a file that envspec rendered
            if not re.fullmatch(VARIABLE_NAME, key):
                odd[key] = None if value is None else self.escaped(where, value)
                if value is not None and self.secret_used(where, value):
                    literal = self.escaped(where, value, keep_secrets=False)
                    patch = self.service_overlay(self.development.environment, name)
                    patch.setdefault("compose", {}).setdefault("environment", {})[key] = literal
                continue
            values = self.variable_values(key, value, where)
            development = self.development.environment
            if development not in values:
                odd[key] = None  # passed from the shell, as compose does
                self.notes.append(
                    f"services.{name}.environment.{key}: passed from the shell (not in "
                    f"{display_path(self.development.path)}): kept so in services.{name}.compose"
                )
                continue
            values = {e: self.renamed_hosts(name, key, v) for e, v in values.items()}
            variable = self.variables.setdefault(key, _Variable(key))
            if value is not None and self.secret_used(where, value):
                variable.from_secret = True
            variable.by_service[name] = values
            received.append(key)
        if shares_env_file:
            for env_file in self.env_files[1:]:
                for key in env_file.values:
                    if (
                        key not in written
                        and key not in self.interpolated
                        and re.fullmatch(VARIABLE_NAME, key)
                    ):
                        variable = self.variables.setdefault(key, _Variable(key))
                        own = variable.by_service.setdefault(name, {})
                        own.setdefault(env_file.environment, env_file.values[key])
                        env_file.used.add(key)
                        received.append(key)
        if odd:
            escape["environment"] = odd
        return received

    def variable_values(self, key: str, value: str | None, where: SpecPath) -> dict[str, str]:
        """The service's value of ``key`` in each environment: what compose reads with that
        environment's .env file; where the service writes no interpolation (a literal, a
        variable passed from the shell, an ``env_file``), the value that .env file gives ``key``
        itself, if any."""
        names: list[str] = []
        if value is not None:
            _names(value, names)
        values: dict[str, str] = {}
        for env_file in self.env_files:
            own = env_file.values.get(key)
            if env_file is not self.development and own is not None and not names:
                env_file.used.add(key)
                values[env_file.environment] = own
            elif value is None:
                if own is not None:
                    env_file.used.add(key)
                    values[env_file.environment] = own
            else:
                values[env_file.environment] = self.substitute(where, value, env_file)
        return values

    def env_file_entries(self, path: SpecPath, entries: Any) -> Iterator[tuple[str, str]]:
        if entries is None:
            return
        for index, entry in enumerate([entries] if isinstance(entries, str | dict) else entries):
            file = entry.get("path") if isinstance(entry, dict) else entry
            required = entry.get("required", True) if isinstance(entry, dict) else True
            target = self.folder / str(self.resolved((*path, "env_file", index), file))
            if not target.is_file():
                if required:
                    raise _RefusalError(
                        (*path, "env_file", index), f"env_file {file} does not exist"
                    )
                continue
            values, _ = _dotenv(target)
            if any("$" in value for value in values.values()):
                raise _RefusalError(
                    (*path, "env_file", index),
                    f"{file} has a '$' in a value: Compose v1 and v2 read it differently",
                )
            yield from values.items()

    def shares_env_file(self, entries: Any) -> bool:
        paths = [] if entries is None else [entries] if isinstance(entries, str | dict) else entries
        for entry in paths:
            file = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(file, str) and (self.folder / file).resolve() == self.development.path:
                return True
        return False

    def renamed_hosts(self, service: str, key: str, value: str) -> str:
        changed = value
        for old, new in self.renames.items():
            if old != new:
                changed = re.sub(
                    rf"(?<![A-Za-z0-9_.-]){re.escape(old)}(?![A-Za-z0-9_-])", new, changed
                )
        if changed != value:
            self.notes.append(
                f"services.{service}.environment.{key}: names a renamed service; "
                "rewritten, check it"
            )
        return changed

    def renamed_reference(self, reference: str) -> str:
        """A ``links``, ``volumes_from`` or ``network_mode`` entry naming the renamed service."""
        prefix = "service:" if reference.startswith("service:") else ""
        target, colon, rest = reference.removeprefix(prefix).partition(":")
        return f"{prefix}{self.renames.get(target, target)}{colon}{rest}"

    # -- interpolation ----------------------------------------------------------------------

    def per_environment(self, path: SpecPath, value: Any) -> dict[str, str]:
        return {e.environment: self.substitute(path, str(value), e) for e in self.env_files}

    def resolved(self, path: SpecPath, value: Any, env_file: _EnvFile | None = None) -> Any:
        """``value`` with compose's interpolation done (``$`` literal), for development unless
        another environment's ``env_file`` is given."""
        source = env_file or self.development
        return _walk(value, lambda text, where: self.substitute(where, text, source), path)

    def escaped(self, path: SpecPath, value: Any, *, keep_secrets: bool = True) -> Any:
        """``value`` resolved for development and written back for compose (``$`` as ``$$``);
        secrets, unless ``keep_secrets`` is false, as references to the shell."""
        return _walk(
            value,
            lambda text, where: self.substitute(
                where, text, self.development, keep_secrets=keep_secrets
            ),
            path,
        )

    def secret_used(self, path: SpecPath, value: Any) -> bool:
        names: list[str] = []
        _walk(value, lambda text, where: _names(text, names), path)
        return any(is_secret_name(name) for name in names)

    def substitute(
        self,
        path: SpecPath,
        text: str,
        env_file: _EnvFile,
        *,
        keep_secrets: bool = False,
    ) -> str:
        def lookup(name: str, defaulted: bool) -> str | None:
            found = env_file.values.get(name)
            if found is not None:
                env_file.used.add(name)
            elif env_file is self.development and not defaulted:
                self.unset.setdefault(name, dotted(path))
            return found

        def keep(name: str) -> str | None:
            if keep_secrets and is_secret_name(name):
                return ""  # development's literal is in its own overlay
            return None

        try:
            return _interpolate(text, lookup, keep)
        except ValueError as error:
            raise _RefusalError(path, str(error)) from None

    # -- paths ------------------------------------------------------------------------------

    def relocated(self, path: str) -> str:
        if path.startswith("/") or "://" in path or path.startswith("~"):
            return path
        relative = os.path.relpath(self.folder / path, self.rendered_in)
        return relative if relative.startswith(".") else f"./{relative}"

    def relocated_build(self, build: Any) -> Any:
        if isinstance(build, str):
            return self.relocated(build)
        if isinstance(build, dict):
            return {**build, "context": self.relocated(str(build.get("context", ".")))}
        return build

    def relocated_files(self, entries: Any) -> Any:
        if not isinstance(entries, dict):
            return entries
        return {
            key: {**entry, "file": self.relocated(entry["file"])}
            if isinstance(entry, dict) and isinstance(entry.get("file"), str)
            else entry
            for key, entry in entries.items()
        }

    # -- output -----------------------------------------------------------------------------

    def declare(self, environment: str, path: str) -> None:
        env_file = next(e for e in self.env_files if e.environment == environment)
        self.overlays[environment].setdefault("differences", []).append(
            {"path": path, "reason": f"imported: {env_file.path.name} sets it so"}
        )

    def service_overlay(self, environment: str, service: str) -> dict[str, Any]:
        services = self.overlays[environment].setdefault("services", {})
        patch: dict[str, Any] = services.setdefault(service, {})
        return patch

    def own_values(
        self,
        project: str,
        variable: _Variable,
        wide: dict[str, str],
        services: dict[str, Any],
    ) -> None:
        """A service's own value wherever it differs from what the service would get without
        one (its base value, else the environment-wide one): development's in the base (a
        secret's in development's overlay), the others in their environment's overlay (a
        secret's as a placeholder of its own)."""
        development = self.development.environment
        for service, values in variable.by_service.items():
            in_base: str | None = None
            for environment, value in values.items():
                if value == (in_base if in_base is not None else wide.get(environment)):
                    continue
                self.own.setdefault(variable.name, {}).setdefault(service, []).append(environment)
                if environment == development and not variable.secret:
                    services[service]["values"][variable.name] = value
                    in_base = value
                    continue
                own: str | dict[str, str] = value
                if variable.secret and environment != development:
                    path = f"{PLACEHOLDER_PATH}{project}/{environment}/{service}"
                    own = {"secret": f"vault://{path}#{variable.name}"}
                patch = self.service_overlay(environment, service)
                patch.setdefault("values", {})[variable.name] = own

    def files(self, project: str, services: dict[str, Any], top: dict[str, Any]) -> dict[str, str]:
        development = self.development.environment
        spec_variables: dict[str, Any] = {}
        for name, variable in self.variables.items():
            wide = {
                e.environment: value
                for e in self.env_files
                if (value := variable.shared(e.environment)) is not None
            }
            entry: dict[str, Any] = {}
            kind = _type(list(variable.all_values()))
            if kind != "str":
                entry["type"] = kind
            if variable.secret:
                entry["secret"] = True
            if development not in wide:
                entry["required"] = False
            elif not variable.secret:
                entry["default"] = wide[development]
            spec_variables[name] = entry
            for env_file in self.env_files:
                environment = env_file.environment
                value = wide.get(environment)
                if value is None:
                    continue
                if variable.secret and environment == development:
                    self.overlays[environment].setdefault("variables", {})[name] = value
                elif variable.secret:
                    reference = f"vault://{PLACEHOLDER_PATH}{project}/{environment}#{name}"
                    self.overlays[environment].setdefault("variables", {})[name] = {
                        "secret": reference
                    }
                elif environment != development and value != wide.get(development):
                    self.overlays[environment].setdefault("variables", {})[name] = value
            self.own_values(project, variable, wide, services)
        base: dict[str, Any] = {
            "version": 1,
            "project": project,
            "environments": {
                e.environment: {"targets": ["dotenv", "compose"], "local": e is self.development}
                for e in self.env_files
            },
            "services": {
                name: {key: value for key, value in spec.items() if key != "values" or value}
                for name, spec in services.items()
            },
            "variables": spec_variables,
        }
        if top:
            base["compose"] = top
        header = (
            SCHEMA_LINE.format(path=SCHEMA_FILE) + "# Imported by envspec init --from-compose.\n"
        )
        overlay_header = SCHEMA_LINE.format(path=f"../{SCHEMA_FILE}")
        files = {"envspec.yaml": header + to_yaml(base)}
        for name, overlay in self.overlays.items():
            overlay.setdefault("variables", {})
            files[f"environments/{name}.yaml"] = overlay_header + to_yaml(overlay)
        return files

    def summary(self, services: dict[str, Any]) -> list[str]:
        secrets = sorted(name for name, variable in self.variables.items() if variable.secret)
        lines = [
            f"services ({len(services)}): {', '.join(services)}",
            f"variables ({len(self.variables)})",
            f"secrets ({len(secrets)}): {', '.join(secrets) or '-'}",
        ]
        if any(e is not self.development for e in self.env_files) and secrets:
            lines.append(
                "secrets outside development are placeholders (vault://TODO/...): "
                "replace each with where it is kept"
            )
        if self.own:
            lines.append(self.own_line())
        lines += [f"renamed: {old} -> {new}" for old, new in self.renames.items() if old != new]
        lines += [
            f"{where}: ${{{name}}} is not set in {display_path(self.development.path)}: imported "
            "as empty, as compose reads it"
            for name, where in self.unset.items()
        ]
        lines += self.notes
        return lines

    def own_line(self) -> str:
        """Which services got their own value of which variable (and where, if not in
        development)."""
        development = self.development.environment
        parts = []
        for name, services in self.own.items():
            named = [
                service
                if development in environments
                else f"{service} (in {', '.join(environments)})"
                for service, environments in services.items()
            ]
            parts.append(f"{name}: {', '.join(named)}")
        return (
            f"own values (services.<service>.values): {'; '.join(parts)}; the other services "
            "share the value most of them have (the first in the file on a tie)"
        )


def _walk(value: Any, change: Callable[[str, SpecPath], Any], path: SpecPath) -> Any:
    if isinstance(value, str):
        return change(value, path)
    if isinstance(value, dict):
        return {key: _walk(item, change, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, change, (*path, index)) for index, item in enumerate(value)]
    return value


def _names(text: str, found: list[str]) -> str:
    def lookup(name: str, defaulted: bool) -> str:
        found.append(name)
        return name

    with contextlib.suppress(ValueError):  # reported where the text is resolved
        _interpolate(text, lookup, lambda name: None)
    return text


def _interpolate(
    text: str,
    lookup: Callable[[str, bool], str | None],
    keep: Callable[[str], str | None],
) -> str:
    """Compose v2's interpolation of ``text`` (compose-go's rules, quirks included): ``$$`` is a
    literal ``$``; ``$NAME``; ``${NAME}``; ``${NAME<op>text}`` with ``:-``, ``-``, ``:+``, ``+``,
    ``:?``, ``?``, where the text runs to the brace that closes the ``{`` count (any ``{``
    opens one) and is interpolated first, used or not. A ``$`` before anything else is refused:
    Compose v2 keeps it, v1 refuses it. ``keep`` may give a name's replacement text as it is
    (a reference). ``lookup`` gets each name, and whether an operator gives it a fallback."""
    out: list[str] = []
    index = 0
    for match in _INTERPOLATION.finditer(text):
        out.append(_literal(text[index : match.start()]))
        out.append(_replacement(match.group(), lookup, keep))
        index = match.end()
    out.append(_literal(text[index:]))
    return "".join(out)


def _literal(text: str) -> str:
    if "$" in text:
        raise ValueError(
            "'$' not followed by a name, '{' or '$' (Compose v1 refuses it; write '$$' for a '$')"
        )
    return text


def _replacement(
    substring: str,
    lookup: Callable[[str, bool], str | None],
    keep: Callable[[str], str | None],
) -> str:
    found = [(substring.find(op), op) for op in _OPERATORS if op in substring]
    operator = min(found)[1] if found else None
    rest = ""
    close = _closing(substring)
    if close >= 0:
        substring, rest = substring[: close + 1], substring[close + 1 :]
    match = _INTERPOLATION.match(substring)
    if match is None or match.group("invalid") is not None:
        raise ValueError(
            "'${' not followed by a name and '}' or ':-', '-', ':+', '+', ':?', '?' "
            "(not an interpolation compose reads)"
        )
    if match.group("escaped"):
        return "$"
    if match.group("named"):
        return _value_of(match.group("named"), lookup, keep)
    braced = match.group("braced")
    if operator is None or operator not in braced:
        return _value_of(braced, lookup, keep)
    name, argument = braced.split(operator, 1)
    argument = _interpolate(argument, lookup, keep)
    kept = keep(name)
    if kept is not None:
        return kept + _interpolate(rest, lookup, keep)
    value = lookup(name, True)
    empty = value is None or (operator.startswith(":") and value == "")
    if operator.endswith("?"):
        if empty:
            raise ValueError(f"required variable {name} is not set: {argument or 'no message'}")
        result = value or ""
    elif operator.endswith("-"):
        result = argument if empty else (value or "")
    else:
        result = (value or "") if empty else argument
    return result + _interpolate(rest, lookup, keep)


def _closing(text: str) -> int:
    """Where compose-go ends a braced interpolation: where its count of ``{`` (each skipping
    the character after it) is closed again; -1 when never."""
    depth = 0
    index = 0
    while index < len(text):
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        if text[index] == "{":
            depth += 1
            index += 1
        index += 1
    return -1


def _value_of(
    name: str,
    lookup: Callable[[str, bool], str | None],
    keep: Callable[[str], str | None],
) -> str:
    kept = keep(name)
    if kept is not None:
        return kept
    return lookup(name, False) or ""


def _split_image(reference: str) -> tuple[str | None, str | None, str | None, bool]:
    """Repository, tag, digest, and whether the spec renders them back as ``reference``."""
    name, at, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    repository, tag = name.rsplit(":", 1) if ":" in last else (name, None)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:-]*", repository):
        return None, None, None, False
    if tag is not None and not re.fullmatch(IMAGE_TAG, tag):
        return repository, None, None, False
    if at and not re.fullmatch(DIGEST, digest):
        return repository, tag, None, False
    return repository, tag, digest or None, True


def _hosted(service: str, variable: str, value: str) -> Iterator[int | None]:
    """The ports (None: no port) at which ``value`` names ``service`` as a host: a URL's host
    (``redis://redis:6379``, ``postgres://u:p@db/x``), a ``host:port`` entry (``search:7700``,
    ``a:1,b:2``), or the whole value of a variable whose name says it is a host (``DB_HOST: db``;
    ``CELERY_ROLE: worker`` does not reach ``worker``)."""
    name = re.escape(service)
    in_url = re.compile(rf"(?://|@){name}(?::([0-9]{{1,5}}))?(?=$|[/?#,])")
    with_port = re.compile(rf"(?:^|,){name}:([0-9]{{1,5}})(?=$|[/,])")
    for match in [*in_url.finditer(value), *with_port.finditer(value)]:
        yield int(match.group(1)) if match.group(1) is not None else None
    if value == service and _HOST_VARIABLE.search(variable):
        yield None


def _container_port(port: Any) -> tuple[int, str] | None:
    """The container's port and protocol of a ``ports`` or ``expose`` entry (None: a range)."""
    if isinstance(port, dict):
        target, protocol = str(port.get("target", "")), str(port.get("protocol", "tcp"))
    else:
        text, _, protocol = str(port).partition("/")
        target = text.rsplit(":", 1)[-1]
    if not target.isdigit() or not 1 <= int(target) <= 65535:
        return None
    return int(target), (protocol or "tcp").lower()


def _spec_ports(ports: list[tuple[int, str]]) -> list[Any]:
    unique = list(dict.fromkeys(ports))
    return [
        port if protocol != "udp" else {"port": port, "protocol": "UDP"}
        for port, protocol in unique
    ]


def _seconds(duration: Any) -> float | None:
    if duration is None:
        return None
    text = str(duration)
    parts = _DURATION.findall(text)
    if not parts or "".join(a + u for a, u in parts) != text:
        return None
    return sum(float(amount) * _UNITS[unit] for amount, unit in parts)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type(values: list[str]) -> str:
    """The narrowest type whose rendering is each value byte for byte."""
    if values and all(value in {"true", "false"} for value in values):
        return "bool"
    if values and all(re.fullmatch(r"-?(0|[1-9][0-9]*)", value) for value in values):
        return "int"
    if values and all(_URL.fullmatch(value) and is_url(value) for value in values):
        return "url"
    return "str"
