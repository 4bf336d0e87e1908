"""``<env>/kubernetes/``: the environment-wide documents (Namespace, Secret skeleton or
ExternalSecret, and for ``provider: fake`` the SecretStore holding a local environment's
literals), ``services/<svc>.yaml`` with each deployed service's documents (ConfigMap, claims,
Deployment, Service, autoscaler, disruption budget), ``tasks/<task>.yaml`` with each task's Job,
and a kustomization that builds them all (``before-deploy`` tasks included, manual ones not).

Non-secret variables reach a pod through its service's ConfigMap (``envFrom``); secret variables
through ``secretKeyRef``: to the environment's Secret skeleton or ExternalSecret target, or, for a
``k8s://`` reference, straight to the existing Secret it names.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, Final, NamedTuple

import yaml

from envspec.derive import parts
from envspec.errors import Problem, RenderError
from envspec.models import ENVIRONMENT_VARIABLE, Autoscale, KubernetesPatch, dns_label
from envspec.render._common import check_values, map_strings, yaml_header
from envspec.render.base import RenderedFile, Templates, merging
from envspec.render.filters import (
    YamlScalars,
    check_kubernetes_value,
    kubelet_composition,
    kubernetes_env,
    yaml_quote,
    yaml_scalar,
)
from envspec.resolve import (
    ResolvedEnvironment,
    ResolvedService,
    ResolvedTask,
    ResolvedVariable,
    deep_merge,
)
from envspec.secrets import STORE_BACKENDS, SecretRef

LABEL_VALUE_MAX = 63
TASK_HASH_LENGTH = 10
SERVER_FIELDS = frozenset({"ports", "readinessProbe", "livenessProbe", "startupProbe", "lifecycle"})
"""What a task's container does not take from its service's ``kubernetes.container`` escape
hatch: a task is a one-off process, not a server."""


class KeyRef(NamedTuple):
    secret: str
    key: str


class Mount(NamedTuple):
    """A named volume of a service: its pod volume name, mount path and claim."""

    name: str
    path: str
    claim: str


class SecretPlan(NamedTuple):
    """Which Secret each secret variable is read from, and the documents that provide them."""

    refs: dict[str, KeyRef]
    skeleton: dict[str, str]
    skeleton_references: dict[str, str]
    external: dict[str, SecretRef]
    fake: dict[str, str]
    """The literals the fake provider's SecretStore holds, by key (the variable's name)."""


class Pod(NamedTuple):
    """What a service's containers get, the same in its Deployment and its tasks' Jobs: the
    plain values (its ConfigMap), the secretKeyRefs (each derived value's secret parts among
    them), the derived values the kubelet composes from those, and their checksum."""

    data: dict[str, str]
    secret_refs: dict[str, KeyRef]
    composed: dict[str, str]
    checksum: str


class KubernetesRenderer:
    scope: Final = "environment"
    deploys_workloads: Final = True
    template_folder: Final = None

    def render(
        self, environment: ResolvedEnvironment, templates: Templates
    ) -> Iterable[RenderedFile]:
        own = [
            service.own[name]
            for service in environment.deployed
            if service.own
            for name in service.variables
            if name in service.own
        ]
        check_values(
            [*environment.variables.values(), *own],
            check_kubernetes_value,
            environment.name,
            "Kubernetes manifests",
        )
        files = list(_Manifests(environment, templates).files())
        if environment.config.local:
            files.append(_kind_cluster(environment, templates))
        return files

    def task_command(
        self,
        environment: ResolvedEnvironment,
        templates: Templates,
        task: ResolvedTask,
        folder: str,
    ) -> str:
        """Create the task's Job, then follow its pod's output (``logs`` waits for the pod)."""
        job = yaml.safe_load(_Manifests(environment, templates).task_document(task))
        path = shlex.quote(f"{folder}/kubernetes/tasks/{task.name}.yaml")
        namespace = shlex.quote(job["metadata"]["namespace"])
        return (
            f"kubectl create -f {path} && "
            f"kubectl logs --namespace {namespace} --follow job/{job['metadata']['name']}"
        )


def _kind_cluster(environment: ResolvedEnvironment, templates: Templates) -> RenderedFile:
    """``<env>/kind-cluster.yaml``: a kind cluster for a local environment, with the commands
    that start it and apply the kustomization in its header."""
    text = templates.render_yaml(
        "kubernetes/kind-cluster.yaml.j2",
        environment=environment.name,
        name=dns_label(f"{environment.project}-{environment.name}"),
        external_secrets=environment.config.secrets.mode == "external-secrets",
    )
    return RenderedFile(
        f"{environment.name}/kind-cluster.yaml", yaml_header(environment.name) + text
    )


class _Manifests:
    """The Kubernetes documents of one environment, file by file."""

    def __init__(self, environment: ResolvedEnvironment, templates: Templates) -> None:
        self.environment = environment
        self.templates = templates
        self.namespace = environment.namespace
        self.project = environment.project
        self.header = yaml_header(environment.name)
        self.base = f"{environment.name}/kubernetes"
        self.secrets_name = f"{environment.project}-secrets"
        self.static_name = f"{environment.project}-secrets-static"
        self._pods: dict[str, Pod] = {}
        self._names = YamlScalars()

    def files(self) -> Iterator[RenderedFile]:
        documents: dict[str, str] = {}
        documents["namespace.yaml"] = self._yaml(
            "kubernetes/namespace.yaml.j2",
            namespace=self.namespace,
            project=self.project,
            level=pod_security_level(self.environment),
        )
        plan = self.plan
        if plan.skeleton:
            name = self.static_name if plan.external else self.secrets_name
            documents["secret.yaml"] = self._yaml(
                "kubernetes/secret.yaml.j2",
                name=name,
                namespace=self.namespace,
                project=self.project,
                data=plan.skeleton,
                references=plan.skeleton_references,
            )
        if plan.fake:
            documents["secretstore.yaml"] = self._yaml(
                "kubernetes/secretstore.yaml.j2",
                name=self.environment.config.secrets.store,
                namespace=self.namespace,
                project=self.project,
                data=plan.fake,
            )
        if plan.external:
            documents["externalsecret.yaml"] = self._yaml(
                "kubernetes/externalsecret.yaml.j2",
                name=self.secrets_name,
                namespace=self.namespace,
                project=self.project,
                secrets=self.environment.config.secrets,
                references=plan.external,
                data_yaml=self._external_data(plan.external),
            )
        for service in self.environment.deployed:
            documents[f"services/{service.name}.yaml"] = "---\n".join(self._service(service))
        manual = set()
        for task in self.environment.tasks:
            path = f"tasks/{task.name}.yaml"
            documents[path] = self.task_document(task)
            if task.spec.when == "manual":
                manual.add(path)
        names = sorted(documents)
        kustomization = self._yaml(
            "kubernetes/kustomization.yaml.j2",
            namespace=self.namespace,
            resources=[name for name in names if name not in manual],
        )
        for name in names:
            yield RenderedFile(f"{self.base}/{name}", self.header + documents[name])
        yield RenderedFile(f"{self.base}/kustomization.yaml", self.header + kustomization)

    def _yaml(
        self, template: str, change: Callable[[Any], Any] | None = None, /, **context: Any
    ) -> str:
        return self.templates.render_yaml(template, change, **context)

    def secret_values(self) -> list[tuple[str, ResolvedVariable]]:
        """Each secret value a deployed service reads (a derived value's secret parts
        included), by its key: the environment's in the spec's order, then services' own."""
        variables = self.environment.variables
        shared: set[str] = set()
        secrets: set[str] = set()
        own: dict[str, ResolvedVariable] = {}
        for service in self.environment.deployed:
            if not service.own:
                shared.update(service.variables)
                continue
            for name in service.variables:
                composition = service.value(name).composition
                for used in parts(composition) if composition is not None else (name,):
                    variable = service.value(used)
                    if not variable.sensitive or variable.composition is not None:
                        continue
                    key = service.secret_name(used)
                    if key == used:
                        secrets.add(used)
                    else:
                        own.setdefault(key, variable)
        for name in shared:
            variable = variables[name]
            if variable.composition is None:
                if variable.sensitive:
                    secrets.add(name)
                continue
            for used in parts(variable.composition):
                part = variables[used]
                if part.sensitive and part.composition is None:
                    secrets.add(used)
        found = [(name, variable) for name, variable in variables.items() if name in secrets]
        if own:
            order = {name: index for index, name in enumerate(variables)}
            found += sorted(own.items(), key=lambda item: (order.get(item[1].name, -1), item[0]))
        return found

    @cached_property
    def plan(self) -> SecretPlan:
        refs: dict[str, KeyRef] = {}
        skeleton: dict[str, str] = {}
        skeleton_references: dict[str, str] = {}
        external: dict[str, SecretRef] = {}
        fake: dict[str, str] = {}
        external_mode = self.environment.config.secrets.mode == "external-secrets"
        fake_provider = self.environment.config.secrets.provider == "fake"
        backends: dict[str, ResolvedVariable] = {}
        problems: list[Problem] = []
        for name, variable in self.secret_values():
            reference = variable.reference
            if fake_provider and reference is None:
                assert variable.value is not None
                fake[name] = variable.value
                external[name] = SecretRef("fake", name)
                refs[name] = KeyRef(self.secrets_name, name)
            elif fake_provider and reference is not None and reference.backend in STORE_BACKENDS:
                problems.append(_not_in_fake_store(self.environment, variable))
            elif reference is not None and reference.backend == "k8s":
                assert reference.key is not None
                refs[name] = KeyRef(reference.path, reference.key)
            elif reference is not None and external_mode and reference.backend in STORE_BACKENDS:
                external[name] = reference
                backends.setdefault(reference.backend, variable)
                refs[name] = KeyRef(self.secrets_name, name)
            else:
                skeleton[name] = variable.value if variable.value is not None else ""
                if reference is not None:
                    skeleton_references[name] = str(reference)
                refs[name] = KeyRef(self.secrets_name, name)
        if external:
            for name, ref in refs.items():
                if name in skeleton:
                    refs[name] = KeyRef(self.static_name, ref.key)
        if len(backends) > 1:
            problems.append(_mixed_backends(self.environment, backends))
        if problems:
            raise RenderError(problems)
        return SecretPlan(refs, skeleton, skeleton_references, external, fake)

    def _service(self, service: ResolvedService) -> list[str]:
        """The service's documents, in the order they are applied."""
        labels = self._labels(service)
        selector = {
            key: labels[key] for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")
        }
        patch = service.spec.kubernetes
        pod = self._pod(service)
        documents: list[str] = []
        config_map = f"{service.name}-config" if pod.data else None
        if config_map:
            names = self._names
            documents.append(
                self._yaml(
                    "kubernetes/configmap.yaml.j2",
                    name=config_map,
                    namespace=self.namespace,
                    labels=labels,
                    data=pod.data,
                    data_yaml="".join(
                        f"  {names[key]}: {yaml_quote(value)}\n" for key, value in pod.data.items()
                    ),
                )
            )
        volumes = service.spec.volumes or {}
        claims = [
            Mount(dns_label(name), volume.path, f"{service.name}-{dns_label(name)}")
            for name, volume in volumes.items()
        ]
        for mount, volume in zip(claims, volumes.values(), strict=True):
            documents.append(
                self._yaml(
                    "kubernetes/pvc.yaml.j2",
                    name=mount.claim,
                    namespace=self.namespace,
                    labels=labels,
                    volume=volume,
                )
            )
        autoscale = service.spec.replicas if isinstance(service.spec.replicas, Autoscale) else None
        documents.append(
            self._yaml(
                "kubernetes/deployment.yaml.j2",
                _patching(patch) if patch is not None else None,
                service=service,
                namespace=self.namespace,
                labels=labels,
                selector=selector,
                autoscale=autoscale,
                checksum=pod.checksum,
                config_map=config_map,
                secret_refs=pod.secret_refs,
                composed=pod.composed,
                env_yaml=self._env_yaml({}, pod),
                resources=_resources(service),
                claims=claims,
            )
        )
        if service.spec.ports:
            documents.append(
                self._yaml(
                    "kubernetes/service.yaml.j2",
                    merging(patch.service if patch else None),
                    service=service,
                    namespace=self.namespace,
                    labels=labels,
                    selector=selector,
                )
            )
        if autoscale is not None:
            documents.append(
                self._yaml(
                    "kubernetes/hpa.yaml.j2",
                    service=service,
                    namespace=self.namespace,
                    labels=labels,
                    autoscale=autoscale,
                )
            )
        if least_replicas(service) >= 2:
            documents.append(
                self._yaml(
                    "kubernetes/pdb.yaml.j2",
                    service=service,
                    namespace=self.namespace,
                    labels=labels,
                    selector=selector,
                )
            )
        return documents

    def task_document(self, task: ResolvedTask) -> str:
        """The task's Job. Its variables are written into it, not read from the service's
        ConfigMap: a Job that runs before the sync sees the configuration being deployed."""
        service = task.service
        pod = self._pod(service)
        resources = _resources(service)
        patch = service.spec.kubernetes
        payload = {
            "image": service.image,
            "command": task.spec.command,
            "config": pod.checksum,
            "user": service.spec.user,
            "security": service.security,
            "shutdown": service.shutdown.model_dump(),
            "resources": resources,
            "patch": patch.model_dump() if patch is not None else None,
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        labels = {
            **self._labels(service),
            "app.kubernetes.io/name": task.name,
            "app.kubernetes.io/component": "task",
        }
        return self._yaml(
            "kubernetes/job.yaml.j2",
            _task_patching(patch) if patch is not None else None,
            name=f"{task.name}-{digest[:TASK_HASH_LENGTH]}",
            task=task,
            service=service,
            namespace=self.namespace,
            labels=labels,
            data=pod.data,
            secret_refs=pod.secret_refs,
            composed=pod.composed,
            env_yaml=self._env_yaml(pod.data, pod),
            resources=resources,
        )

    def _pod(self, service: ResolvedService) -> Pod:
        """The service's :class:`Pod`, worked out once (its tasks' Jobs share it)."""
        pod = self._pods.get(service.name)
        if pod is None:
            data, secret_refs, composed = self._environment_of(service)
            checksum = self._checksum(service, data, secret_refs, composed)
            pod = self._pods[service.name] = Pod(data, secret_refs, composed, checksum)
        return pod

    def _environment_of(
        self, service: ResolvedService
    ) -> tuple[dict[str, str], dict[str, KeyRef], dict[str, str]]:
        refs = self.plan.refs
        variables = service.values
        data: dict[str, str] = {ENVIRONMENT_VARIABLE: self.environment.name} if variables else {}
        secret_refs: dict[str, KeyRef] = {}
        composed: dict[str, str] = {}
        for variable in variables:
            if not variable.sensitive and variable.value is not None:
                data[variable.name] = variable.value
            if variable.composition is not None:
                for part in parts(variable.composition):
                    secret_refs.setdefault(part, refs[service.secret_name(part)])
                composed[variable.name] = kubelet_composition(variable.composition)
            elif variable.sensitive:
                secret_refs.setdefault(variable.name, refs[service.secret_name(variable.name)])
        return data, secret_refs, composed

    def _checksum(
        self,
        service: ResolvedService,
        data: dict[str, str],
        secret_refs: dict[str, KeyRef],
        composed: dict[str, str],
    ) -> str:
        """Changes whenever the pod's configuration changes, so the Deployment rolls its pods."""
        references = {
            name: [ref.secret, ref.key, str(service.value(name).reference or "")]
            for name, ref in secret_refs.items()
        }
        content: dict[str, object] = {"data": data, "secrets": references}
        if composed:
            content["composed"] = composed
        payload = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def _external_data(self, references: Mapping[str, SecretRef]) -> str:
        """The ExternalSecret's ``data`` list as YAML: each key, and where the store keeps it."""
        names = self._names
        return "".join(
            f"    - secretKey: {names[key]}\n"
            f"      remoteRef:\n        key: {yaml_scalar(reference.path)}\n"
            + (
                f"        property: {yaml_scalar(reference.key)}\n"
                if reference.key is not None
                else ""
            )
            for key, reference in references.items()
        )

    def _env_yaml(self, values: Mapping[str, str], pod: Pod) -> str:
        """A container's ``env`` list as YAML: ``values`` written in, then the pod's
        secretKeyRefs, then the values the kubelet composes from them (empty without any)."""
        if not (values or pod.secret_refs):
            return ""
        names = self._names
        lines = ["          env:\n"]
        lines += [
            f"            - name: {names[key]}\n"
            f"              value: {yaml_quote(kubernetes_env(value))}\n"
            for key, value in values.items()
        ]
        lines += [
            f"            - name: {names[key]}\n"
            "              valueFrom:\n"
            "                secretKeyRef:\n"
            f"                  name: {names[ref.secret]}\n"
            f"                  key: {names[ref.key]}\n"
            for key, ref in pod.secret_refs.items()
        ]
        lines += [
            f"            - name: {names[key]}\n              value: {yaml_quote(value)}\n"
            for key, value in pod.composed.items()
        ]
        return "".join(lines)

    def _labels(self, service: ResolvedService) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/name": service.name,
            "app.kubernetes.io/instance": self.namespace,
            "app.kubernetes.io/part-of": self.project,
            "app.kubernetes.io/managed-by": "envspec",
        }
        version = service.spec.version
        if (
            version
            and len(version) <= LABEL_VALUE_MAX
            and version[0].isalnum()
            and version[-1].isalnum()
        ):
            labels["app.kubernetes.io/version"] = version
        return labels


def _patching(patch: KubernetesPatch) -> Callable[[Any], Any] | None:
    """Merge a service's ``kubernetes:`` escape hatch into its Deployment."""
    if not (patch.deployment or patch.pod or patch.container):
        return None

    pod_patch = _escaped_pod(patch.pod)
    container_patch = _escaped_container(patch.container)

    def change(deployment: Any) -> Any:
        deployment = deep_merge(deployment, patch.deployment)
        pod = deep_merge(deployment["spec"]["template"]["spec"], pod_patch)
        container = pod["containers"][0]
        merged = deep_merge(container, container_patch)
        if "env" in container and "env" in container_patch:
            merged["env"] = [*container["env"], *container_patch["env"]]
        pod["containers"] = [merged]
        deployment["spec"]["template"]["spec"] = pod
        return deployment

    return change


def _task_patching(patch: KubernetesPatch) -> Callable[[Any], Any] | None:
    """Merge a service's pod and container escape hatches into its task's Job, but for what
    belongs to a server; the container's ``env`` is added to the task's variables."""
    container = {key: value for key, value in patch.container.items() if key not in SERVER_FIELDS}
    if not (patch.pod or container):
        return None
    container = _escaped_container(container)
    pod_patch = _escaped_pod(patch.pod)

    def change(job: Any) -> Any:
        pod = deep_merge(job["spec"]["template"]["spec"], pod_patch)
        own = pod["containers"][0]
        merged = deep_merge(own, container)
        if "env" in container:
            merged["env"] = [*own.get("env", ()), *container["env"]]
        pod["containers"] = [merged]
        job["spec"]["template"]["spec"] = pod
        return job

    return change


def least_replicas(service: ResolvedService) -> int:
    """The fewest pods the service runs: its replicas, or its autoscaler's minimum."""
    replicas = service.spec.replicas
    if isinstance(replicas, Autoscale):
        return replicas.min
    return 1 if replicas is None else replicas


def pod_security_level(environment: ResolvedEnvironment) -> str:
    """The Pod Security Standard that every workload of the environment meets."""
    if all(service.security == "restricted" for service in environment.deployed):
        return "restricted"
    return "baseline"


_CONTAINER_LISTS = frozenset({"initContainers", "ephemeralContainers"})


def _escaped_pod(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        key: [_escaped_container(c) for c in value] if key in _CONTAINER_LISTS else value
        for key, value in pod.items()
    }


def _escaped_container(container: Any) -> Any:
    """A container of an escape hatch with the kubelet's ``$(NAME)`` expansion escaped in its
    command, arguments and environment values, so they reach the process as written."""
    if not isinstance(container, dict):
        return container
    escaped = dict(container)
    for key in ("command", "args"):
        if key in escaped:
            escaped[key] = map_strings(escaped[key], kubernetes_env)
    if isinstance(escaped.get("env"), list):
        escaped["env"] = [
            {**entry, "value": kubernetes_env(entry["value"])}
            if isinstance(entry, dict) and isinstance(entry.get("value"), str)
            else entry
            for entry in escaped["env"]
        ]
    return escaped


def _resources(service: ResolvedService) -> dict[str, dict[str, str]]:
    resources = service.spec.resources
    if resources is None:
        return {}
    sections = {
        "requests": resources.requests.model_dump(exclude_none=True),
        "limits": resources.limits.model_dump(exclude_none=True),
    }
    return {section: amounts for section, amounts in sections.items() if amounts}


def _mixed_backends(
    environment: ResolvedEnvironment, backends: dict[str, ResolvedVariable]
) -> Problem:
    first = next(iter(backends.values())).origin.position()
    return Problem.at(
        first,
        "secrets",
        f"environment '{environment.name}' reads secrets through one ExternalSecret store, but "
        f"its references use several backends ({', '.join(sorted(backends))})",
    )


def _not_in_fake_store(environment: ResolvedEnvironment, variable: ResolvedVariable) -> Problem:
    where = variable.origin.position()
    return Problem.at(
        where,
        f"variables.{variable.name}",
        f"environment '{environment.name}' reads its secrets from the fake provider, which holds "
        f"only this environment's literals; give '{variable.name}' a literal value here, or "
        "reference it with env:// or k8s://",
    )


KUSTOMIZATION = "kustomization.yaml"
_APPLIED_FIRST = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
_APPLIED_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def document_stream(files: Mapping[str, str]) -> str:
    """The documents ``kubectl kustomize`` builds from an environment's kustomization, in the
    order it prints them (kustomize's legacy order: kinds that others depend on first), as one
    YAML stream. ``files`` maps each rendered file's path to its text; each document is the
    text envspec rendered, without its comment lines."""
    kustomization = next(path for path in files if path.endswith(f"/{KUSTOMIZATION}"))
    folder = kustomization.removesuffix(KUSTOMIZATION)
    resources = yaml.safe_load(files[kustomization])["resources"]
    documents = [
        (_applied_order(yaml.safe_load(text)), text)
        for resource in resources
        for text in _documents(files[folder + resource])
    ]
    return "---\n".join(text for _, text in sorted(documents, key=lambda item: item[0]))


def _documents(content: str) -> Iterator[str]:
    """The texts of a YAML stream's documents, without full-line comments."""
    lines: list[str] = []
    for line in content.splitlines(keepends=True):
        if line.rstrip("\r\n") == "---":
            if lines:
                yield "".join(lines)
            lines = []
        elif not line.startswith("#"):
            lines.append(line)
    if lines:
        yield "".join(lines)


def _applied_order(document: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = str(document["kind"])
    group, _, version = str(document["apiVersion"]).rpartition("/")
    if kind in _APPLIED_FIRST:
        rank = _APPLIED_FIRST.index(kind) - len(_APPLIED_FIRST)
    elif kind in _APPLIED_LAST:
        rank = _APPLIED_LAST.index(kind) + 1
    else:
        rank = 0
    metadata = document.get("metadata") or {}
    gvk = f"{group or '~G'}_{version}_{kind}"
    return rank, gvk, str(metadata.get("name", "")), str(metadata.get("namespace", ""))
