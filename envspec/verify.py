"""``envspec verify``: live Kubernetes objects compared with what envspec renders for them.

A *drift* is one field of one object that differs: ``Deployment/backend: containers[backend].image:
expected ..., found ...``. Only what envspec decides is compared (images, replicas or autoscaler
bounds, each container's variables and their sources, ConfigMap values, Secret key names, grace
periods, security settings); fields the API server adds or defaults are not drift, and objects
envspec does not render are ignored. A Secret's data is read for its keys only: its values are
dropped as soon as the live objects are read, and a literal found where envspec expects none is
reported as "a literal value", never shown.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envspec.errors import EnvspecError

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

ABSENT = "absent"
PRESENT = "present"
HIDDEN = "a literal value"
DEFAULT_GRACE_SECONDS = 30
WORKLOAD_TEMPLATES = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
"""Kinds whose pods are compared with them: each pod's images and pulled digests."""
RUN_ONCE = frozenset({"Job"})
"""Kinds whose objects may be gone once they ran (a hook's Job): their absence is not drift."""
KUBECTL_TIMEOUT = 60
MAX_LIVE_BYTES = 256 * 2**20

Shape = dict[str, "Shape"] | list["Shape"] | type[str]
"""What compare reads of a live object: a mapping (its listed keys checked in turn), a list of one
shape, or text; a field that is absent or null always fits."""
_CONTAINER: Shape = {
    "name": str,
    "env": [
        {"name": str, "valueFrom": {"secretKeyRef": {}, "configMapKeyRef": {}, "fieldRef": {}}}
    ],
    "envFrom": [{"configMapRef": {}, "secretRef": {}}],
}
_POD_SPEC: Shape = {"containers": [_CONTAINER], "initContainers": [_CONTAINER]}
_TEMPLATE: dict[str, Shape] = {
    "spec": {"template": {"spec": _POD_SPEC}, "selector": {"matchLabels": {}}}
}
LIVE_SHAPES: dict[str, dict[str, Shape]] = {
    "Deployment": _TEMPLATE,
    "StatefulSet": _TEMPLATE,
    "DaemonSet": _TEMPLATE,
    "Job": _TEMPLATE,
    "CronJob": {"spec": {"jobTemplate": _TEMPLATE}},
    "Pod": {"spec": _POD_SPEC, "status": {"containerStatuses": [{"name": str}]}},
    "HorizontalPodAutoscaler": {"spec": {"metrics": [{"resource": {"target": {}}}]}},
    "ConfigMap": {"data": {}},
    "Secret": {"data": {}, "stringData": {}},
    "ExternalSecret": {
        "spec": {"secretStoreRef": {}, "target": {}, "data": [{"secretKey": str, "remoteRef": {}}]}
    },
    "PodDisruptionBudget": {"spec": {}},
}

Object = dict[str, Any]
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Drift:
    """One field of one object that is not what envspec renders."""

    kind: str
    name: str
    field: str
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"{self.kind}/{self.name}: {self.field}: expected {self.expected}, found {self.found}"
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
            "line": str(self),
        }


@dataclass(frozen=True)
class Report:
    environment: str
    namespace: str
    objects: int
    drift: tuple[Drift, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "namespace": self.namespace,
            "objects": self.objects,
            "drift": [item.as_dict() for item in self.drift],
        }


def expected_objects(stream: str) -> list[Object]:
    """The rendered documents, and for each ExternalSecret the Secret it makes (its keys)."""
    documents = [d for d in yaml.load_all(stream, Loader=_Loader) if isinstance(d, dict)]
    made = []
    for document in documents:
        if document["kind"] == "ExternalSecret":
            spec = document["spec"]
            keys = {entry["secretKey"]: "" for entry in spec.get("data") or []}
            metadata = document["metadata"]
            made.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": spec["target"]["name"],
                        "namespace": metadata["namespace"],
                    },
                    "data": keys,
                }
            )
    return documents + made


def namespace_of(objects: list[Object]) -> str:
    return next(str(o["metadata"]["name"]) for o in objects if o["kind"] == "Namespace")


def read_live(source: str) -> list[Object]:
    """The objects of ``kubectl get ... -o json`` output in a file or, for ``-``, on standard
    input; at most :data:`MAX_LIVE_BYTES` of it (``--from /dev/zero`` ends)."""
    name = "standard input" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_LIVE_BYTES + 1)
        else:
            with Path(source).open("rb") as file:
                data = file.read(MAX_LIVE_BYTES + 1)
        if len(data) > MAX_LIVE_BYTES:
            raise EnvspecError(f"{name}: larger than {MAX_LIVE_BYTES // 2**20} MiB")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EnvspecError(f"cannot read {name}: {error.__class__.__name__}") from None
    return live_objects(text, name)


def live_objects(text: str, source: str) -> list[Object]:
    """The objects of one or more JSON values, one after the other: Lists (their items) or
    single objects, as successive ``kubectl get -o json`` commands print them."""
    decoder = json.JSONDecoder()
    objects: list[Object] = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            data, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise EnvspecError(
                f"{source}:{error.lineno}:{error.colno}: not the JSON of kubectl get -o json "
                f"({error.msg})"
            ) from None
        except RecursionError:
            raise EnvspecError(
                f"{source}: not the JSON of kubectl get -o json (nested too deeply)"
            ) from None
        items = data.get("items") if isinstance(data, dict) and "items" in data else [data]
        if not isinstance(items, list):
            raise EnvspecError(f"{source}: items: expected a list of objects")
        for item in items:
            if _is_object(item):
                _check_shape(item, source)
                objects.append(_without_secret_values(item))
        position = _skip_space(text, position)
    return objects


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _is_object(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("kind"), str)
        and isinstance(item.get("metadata"), dict)
        and isinstance(item["metadata"].get("name"), str)
    )


def _check_shape(item: Object, source: str) -> None:
    """Refuse a live object whose fields that compare reads have another type than the API
    server gives them, naming the object and the field (never its value)."""
    shape: Shape = {"metadata": {"labels": {}}, **LIVE_SHAPES.get(item["kind"], {})}
    for path, wanted in _misfits(item, shape, ""):
        name = f"{item['kind']}/{item['metadata']['name']}"
        raise EnvspecError(
            f"{source}: {name}: {path}: expected {wanted}, as kubectl get -o json prints it"
        )


def _misfits(value: Any, shape: Shape, path: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            yield path, "an object"
            return
        for key, inner in shape.items():
            yield from _misfits(value.get(key), inner, f"{path}.{key}".lstrip("."))
    elif isinstance(shape, list):
        if not isinstance(value, list):
            yield path, "a list"
            return
        for index, item in enumerate(value):
            if item is None:
                yield f"{path}[{index}]", "an object" if isinstance(shape[0], dict) else "text"
            yield from _misfits(item, shape[0], f"{path}[{index}]")
    elif not isinstance(value, shape):
        yield path, "text"


def _without_secret_values(item: Object) -> Object:
    """A Secret keeps only its name and key names: its values (and the annotation where
    ``kubectl apply`` records them) are not kept anywhere."""
    if item["kind"] != "Secret":
        return item
    keys = [*(item.get("data") or {}), *(item.get("stringData") or {})]
    metadata = {k: item["metadata"][k] for k in ("name", "namespace") if k in item["metadata"]}
    return {"kind": "Secret", "metadata": metadata, "data": dict.fromkeys(keys, "")}


def fetch(expected: list[Object], namespace: str, context: str | None) -> list[Object]:
    """The environment's live objects, as ``kubectl get`` prints them: every kind envspec
    renders in the namespace, and the Namespace itself."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise EnvspecError(
            "kubectl is not on PATH: install it, or pass the live objects with "
            "--from FILE (the output of kubectl get ... -o json)"
        )
    kinds = {_resource(o) for o in expected if o["kind"] != "Namespace"}
    if any(o["kind"] in RUNNING for o in expected):
        kinds.add("pod")
    command = [kubectl, *(["--context", context] if context else []), "get"]
    timeout = f"--request-timeout={KUBECTL_TIMEOUT // 2}s"
    listed = _kubectl(
        [*command, ",".join(sorted(kinds)), "--namespace", namespace, "-o", "json", timeout]
    )
    objects = live_objects(listed, "kubectl get")
    own = _kubectl([*command, "namespace", namespace, "-o", "json", "--ignore-not-found", timeout])
    return objects + (live_objects(own, "kubectl get") if own.strip() else [])


def _resource(document: Object) -> str:
    group = str(document["apiVersion"]).rpartition("/")[0]
    kind = str(document["kind"]).lower()
    return f"{kind}.{group}" if group else kind


def _kubectl(command: list[str]) -> str:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=KUBECTL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise EnvspecError(
            f"kubectl get did not answer within {KUBECTL_TIMEOUT} s; is the cluster reachable?"
        ) from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise EnvspecError(f"kubectl get failed: {reason}")
    return result.stdout


def compare(expected: list[Object], live: list[Object]) -> list[Drift]:
    """Every drift of the live objects from the expected ones, object by object in the order
    they are rendered."""
    found = {_key(o): o for o in live}
    drift: list[Drift] = []
    for want in expected:
        kind, name = want["kind"], want["metadata"]["name"]
        have = found.get(_key(want))
        if have is None:
            if kind not in RUN_ONCE:
                drift.append(Drift(kind, name, "object", PRESENT, ABSENT))
            continue
        drift += [Drift(kind, name, f, e, h) for f, e, h in _fields(kind, want, have)]
    pods = sorted((o for o in live if o["kind"] == "Pod"), key=_key)
    for want in expected:
        if want["kind"] in RUNNING:
            for pod in _selected(want, pods):
                name = pod["metadata"]["name"]
                drift += [Drift("Pod", name, f, e, h) for f, e, h in _running(want, pod)]
    return drift


def _selected(workload: Object, pods: list[Object]) -> Iterator[Object]:
    """The pods a workload's selector picks, in its namespace."""
    namespace = workload["metadata"].get("namespace")
    wanted = (_get(workload, "spec", "selector", "matchLabels") or {}).items()
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if pod["metadata"].get("namespace") == namespace and wanted <= labels.items():
            yield pod


def _running(workload: Object, pod: Object) -> Iterator[FieldDrift]:
    """What a pod runs: each container's image and, for an image pinned by digest, the digest
    its container runtime pulled."""
    want = {c["name"]: c for c in _get(workload, "spec", "template", "spec", "containers") or []}
    have = {c.get("name"): c for c in _get(pod, "spec", "containers") or []}
    statuses = {c.get("name"): c for c in _get(pod, "status", "containerStatuses") or []}
    for name, container in want.items():
        image = container.get("image")
        yield from _same(f"containers[{name}].image", image, (have.get(name) or {}).get("image"))
        digest = str(image).rpartition("@")[2] if "@" in str(image) else None
        pulled = (statuses.get(name) or {}).get("imageID")
        if digest is not None and pulled:
            yield from _same(f"containers[{name}].imageID", digest, str(pulled).rpartition("@")[2])


def _key(document: Object) -> Key:
    metadata = document["metadata"]
    namespace = "" if document["kind"] == "Namespace" else str(metadata.get("namespace", ""))
    return str(document["kind"]), namespace, str(metadata["name"])


FieldDrift = tuple[str, str, str]


def _fields(kind: str, want: Object, have: Object) -> Iterator[FieldDrift]:
    if kind in WORKLOAD_TEMPLATES:
        if "replicas" in want.get("spec", {}):
            yield from _same("replicas", want["spec"]["replicas"], _get(have, "spec", "replicas"))
        path = WORKLOAD_TEMPLATES[kind]
        yield from _pod(_get(want, *path, "spec") or {}, _get(have, *path, "spec") or {})
    elif kind == "HorizontalPodAutoscaler":
        yield from _autoscaler(want["spec"], have.get("spec") or {})
    elif kind == "ConfigMap":
        yield from _config_map(want.get("data") or {}, have.get("data") or {})
    elif kind == "Secret":
        yield from _secret_keys(want, have)
    elif kind == "ExternalSecret":
        yield from _external_secret(want["spec"], have.get("spec") or {})
    elif kind == "PodDisruptionBudget":
        for field in ("minAvailable", "maxUnavailable"):
            yield from _same(field, _get(want, "spec", field), _get(have, "spec", field))
    elif kind == "Namespace":
        labels = _get(want, "metadata", "labels") or {}
        live_labels = _get(have, "metadata", "labels") or {}
        for label in sorted(labels):
            if label.startswith("pod-security.kubernetes.io/"):
                yield from _same(f"labels.{label}", labels[label], live_labels.get(label))


def _pod(want: Object, have: Object) -> Iterator[FieldDrift]:
    yield from _same(
        "terminationGracePeriodSeconds",
        want.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS),
        have.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS),
    )
    yield from _settings(
        "securityContext", want.get("securityContext"), have.get("securityContext")
    )
    for section in ("initContainers", "containers"):
        live = {c.get("name"): c for c in have.get(section) or []}
        for container in want.get(section) or []:
            label = f"{section}[{container['name']}]"
            if container["name"] not in live:
                yield label, PRESENT, ABSENT
                continue
            yield from _container(label, container, live[container["name"]])


def _container(label: str, want: Object, have: Object) -> Iterator[FieldDrift]:
    yield from _same(f"{label}.image", want.get("image"), have.get("image"))
    expected = {e["name"]: e for e in want.get("env") or []}
    found = {e.get("name"): e for e in have.get("env") or [] if isinstance(e, dict)}
    for name in [*expected, *(n for n in found if n not in expected)]:
        shown_expected = _source(expected[name]) if name in expected else ABSENT
        want_entry = expected.get(name)
        same = (
            want_entry is not None and name in found and _source(found[name]) == _source(want_entry)
        )
        shown_found = _source(found[name], same or _public(want_entry)) if name in found else ABSENT
        if shown_expected != shown_found:
            yield f"{label}.env.{name}", shown_expected, shown_found
    sources = [_env_from(e) for e in want.get("envFrom") or []]
    live_sources = [_env_from(e) for e in have.get("envFrom") or []]
    if sources != live_sources:
        yield f"{label}.envFrom", _listed(sources), _listed(live_sources)
    for field in ("securityContext", "lifecycle"):
        yield from _settings(f"{label}.{field}", want.get(field), have.get(field))


def _public(entry: Object | None) -> bool:
    """Whether a live literal for this variable may be shown: only where envspec renders a
    plain literal too, not a reference nor a value composed from other variables (``$(PART)``),
    whose live stand-in may hold the secret parts written out."""
    return entry is not None and "valueFrom" not in entry and "$(" not in str(entry.get("value"))


def _source(entry: Object, show_literal: bool = True) -> str:
    """Where a container variable's value comes from, as a drift line shows it."""
    reference = entry.get("valueFrom")
    if not isinstance(reference, dict):
        return (
            "value " + json.dumps(entry.get("value", ""), ensure_ascii=False)
            if show_literal
            else HIDDEN
        )
    for kind in ("secretKeyRef", "configMapKeyRef"):
        if kind in reference:
            return f"{kind} {reference[kind].get('name')}/{reference[kind].get('key')}"
    if "fieldRef" in reference:
        return f"fieldRef {reference['fieldRef'].get('fieldPath')}"
    if "resourceFieldRef" in reference:
        return f"resourceFieldRef {reference['resourceFieldRef'].get('resource')}"
    return "valueFrom " + _compact(sorted(reference))


def _env_from(entry: Object) -> str:
    prefix = f" (prefix {entry['prefix']})" if entry.get("prefix") else ""
    for kind in ("configMapRef", "secretRef"):
        if kind in entry:
            return f"{kind} {entry[kind].get('name')}{prefix}"
    return _compact(entry)


def _listed(sources: list[str]) -> str:
    return "[" + ", ".join(sources) + "]" if sources else "none"


def _autoscaler(want: Object, have: Object) -> Iterator[FieldDrift]:
    yield from _same("minReplicas", want.get("minReplicas", 1), have.get("minReplicas", 1))
    yield from _same("maxReplicas", want.get("maxReplicas"), have.get("maxReplicas"))
    yield from _same("targetCPUUtilization", _cpu_target(want), _cpu_target(have))


def _cpu_target(spec: Object) -> Any:
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            return (resource.get("target") or {}).get("averageUtilization")
    return None


def _config_map(want: Mapping[str, Any], have: Mapping[str, Any]) -> Iterator[FieldDrift]:
    for key, value in want.items():
        found = have.get(key)
        if found != value:
            yield f"data.{key}", _shown(value), _shown(found)
    for key in have:
        if key not in want:
            yield f"data.{key}", ABSENT, HIDDEN


def _secret_keys(want: Object, have: Object) -> Iterator[FieldDrift]:
    keys = [*(want.get("stringData") or {}), *(want.get("data") or {})]
    live = set(have.get("data") or {})
    for key in keys:
        if key not in live:
            yield f"data.{key}", PRESENT, ABSENT
    for key in sorted(live - set(keys)):
        yield f"data.{key}", ABSENT, PRESENT


def _external_secret(want: Object, have: Object) -> Iterator[FieldDrift]:
    for field in ("name", "kind"):
        yield from _same(
            f"secretStoreRef.{field}",
            _get(want, "secretStoreRef", field),
            _get(have, "secretStoreRef", field),
        )
    yield from _same("target.name", _get(want, "target", "name"), _get(have, "target", "name"))
    remote = {e["secretKey"]: e.get("remoteRef") for e in want.get("data") or []}
    live = {e.get("secretKey"): e.get("remoteRef") for e in have.get("data") or []}
    for key in [*remote, *(k for k in live if k not in remote)]:
        yield from _same(f"data.{key}.remoteRef", _reference(remote, key), _reference(live, key))


def _reference(references: Mapping[Any, Any], key: str) -> Any:
    if key not in references:
        return None
    reference = references[key] or {}
    return {field: reference[field] for field in ("key", "property") if field in reference}


def _settings(label: str, want: Any, have: Any) -> Iterator[FieldDrift]:
    """Settings compared leaf by leaf (a list is one leaf): each one set on either side."""
    expected = dict(_leaves(want))
    found = dict(_leaves(have))
    for path in [*expected, *(p for p in found if p not in expected)]:
        yield from _same(f"{label}.{path}", expected.get(path), found.get(path))


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}{key}.")
    elif value is not None and prefix:
        yield prefix.removesuffix("."), value


def _same(field: str, expected: Any, found: Any) -> Iterator[FieldDrift]:
    if expected != found:
        yield field, _shown(expected), _shown(found)


def _shown(value: Any) -> str:
    return ABSENT if value is None else _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
