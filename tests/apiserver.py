"""Objects as a Kubernetes API server serves them back after ``kubectl apply``: the applied
document plus what the server adds (identity, bookkeeping, status) and the defaults it fills in,
the way ``kubectl get -o json`` prints them."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

CREATED = "2026-11-30T09:15:02Z"
PROBE_DEFAULTS = {"successThreshold": 1}


def served(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as the server stores it: metadata, defaults and status added."""
    live = copy.deepcopy(document)
    kind = live["kind"]
    metadata = live.setdefault("metadata", {})
    identity = f"{kind}/{metadata.get('namespace', '')}/{metadata['name']}"
    metadata["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, identity))
    metadata["resourceVersion"] = str(int(hashlib.sha256(identity.encode()).hexdigest()[:6], 16))
    metadata["creationTimestamp"] = CREATED
    metadata.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = (
        json.dumps(document, separators=(",", ":")) + "\n"
    )
    metadata["managedFields"] = [
        {
            "apiVersion": live["apiVersion"],
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {}}},
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "time": CREATED,
        }
    ]
    if kind in {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "Pod"}:
        metadata["generation"] = 1
    SERVED.get(kind, lambda _: None)(live)
    return live


def as_list(objects: Iterable[dict[str, Any]]) -> str:
    """``kubectl get ... -o json`` output: a List of the objects."""
    return json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {}}, indent=4
    )


def _namespace(live: dict[str, Any]) -> None:
    name = live["metadata"]["name"]
    live["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    live["spec"] = {"finalizers": ["kubernetes"]}
    live["status"] = {"phase": "Active"}


def _secret(live: dict[str, Any]) -> None:
    """``stringData`` is merged into ``data``, base64-encoded, and not kept."""
    data = live.setdefault("data", {})
    for key, value in (live.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    live.setdefault("type", "Opaque")


def _service(live: dict[str, Any]) -> None:
    spec = live["spec"]
    address = "10.96.0." + str(
        int(hashlib.sha256(live["metadata"]["name"].encode()).hexdigest()[:2], 16)
    )
    spec.update(
        {
            "clusterIP": address,
            "clusterIPs": [address],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
        }
    )
    spec.setdefault("type", "ClusterIP")
    live["status"] = {"loadBalancer": {}}


def _claim(live: dict[str, Any]) -> None:
    live["spec"].setdefault("volumeMode", "Filesystem")
    live["spec"].setdefault("storageClassName", "standard")
    live["spec"]["volumeName"] = f"pvc-{live['metadata']['uid']}"
    live["status"] = {"phase": "Bound", "accessModes": live["spec"]["accessModes"]}


def _pod_spec(pod: dict[str, Any]) -> None:
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("securityContext", {})
    pod.setdefault("schedulerName", "default-scheduler")
    for container in pod["containers"] + pod.get("initContainers", []):
        image = container["image"]
        tag = image.rpartition("/")[2].partition("@")[0]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        for variable in container.get("env", []):
            field = (variable.get("valueFrom") or {}).get("fieldRef")
            if field is not None:
                field.setdefault("apiVersion", "v1")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in container:
                for key, value in PROBE_DEFAULTS.items():
                    container[probe].setdefault(key, value)
    for volume in pod.get("volumes", []):
        if "configMap" in volume or "secret" in volume:
            (volume.get("configMap") or volume["secret"]).setdefault("defaultMode", 420)


def _deployment(live: dict[str, Any]) -> None:
    spec = live["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    )
    spec["template"].setdefault("metadata", {})["creationTimestamp"] = None
    _pod_spec(spec["template"]["spec"])
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
    replicas = spec["replicas"]
    live["status"] = {
        "availableReplicas": replicas,
        "observedGeneration": 1,
        "readyReplicas": replicas,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def _job(live: dict[str, Any]) -> None:
    spec = live["spec"]
    controller = {"batch.kubernetes.io/controller-uid": live["metadata"]["uid"]}
    spec.setdefault("selector", {"matchLabels": controller})
    template_labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
    template_labels.update(controller, **{"batch.kubernetes.io/job-name": live["metadata"]["name"]})
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec["template"].setdefault("metadata", {})["creationTimestamp"] = None
    _pod_spec(spec["template"]["spec"])
    live["status"] = {"succeeded": 1, "completionTime": CREATED, "startTime": CREATED}


def _autoscaler(live: dict[str, Any]) -> None:
    live["spec"].setdefault("minReplicas", 1)
    live["status"] = {
        "currentReplicas": live["spec"]["minReplicas"],
        "desiredReplicas": live["spec"]["minReplicas"],
        "currentMetrics": [],
    }


def _disruption_budget(live: dict[str, Any]) -> None:
    live["status"] = {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1}


def _external_secret(live: dict[str, Any]) -> None:
    for entry in live["spec"].get("data", []):
        entry["remoteRef"].setdefault("conversionStrategy", "Default")
        entry["remoteRef"].setdefault("decodingStrategy", "None")
        entry["remoteRef"].setdefault("metadataPolicy", "None")
    live["spec"]["target"].setdefault("deletionPolicy", "Retain")
    live["status"] = {"binding": {"name": live["spec"]["target"]["name"]}, "refreshTime": CREATED}


SERVED = {
    "Namespace": _namespace,
    "Secret": _secret,
    "Service": _service,
    "PersistentVolumeClaim": _claim,
    "Deployment": _deployment,
    "Job": _job,
    "Pod": lambda live: _pod_spec(live["spec"]),
    "HorizontalPodAutoscaler": _autoscaler,
    "PodDisruptionBudget": _disruption_budget,
    "ExternalSecret": _external_secret,
}


def made_secret(external_secret: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The Secret the external-secrets operator makes for an ExternalSecret, with ``values``."""
    spec = external_secret["spec"]
    return served(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": spec["target"]["name"],
                "namespace": external_secret["metadata"]["namespace"],
                "ownerReferences": [
                    {
                        "apiVersion": "external-secrets.io/v1",
                        "kind": "ExternalSecret",
                        "name": external_secret["metadata"]["name"],
                        "controller": True,
                    }
                ],
            },
            "type": "Opaque",
            "stringData": {
                entry["secretKey"]: values[entry["secretKey"]] for entry in spec["data"]
            },
        }
    )


def unmanaged(namespace: str) -> list[dict[str, Any]]:
    """Objects every namespace holds that envspec does not render."""
    return [
        served(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                "data": {
                    "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                },
            }
        ),
        served(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            }
        ),
        served(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-credentials", "namespace": namespace},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": '{"auths": {}}'},
            }
        ),
    ]


def pods_of(
    deployment: dict[str, Any], count: int, pulled: str | None = None
) -> list[dict[str, Any]]:
    """The pods a served Deployment's ReplicaSet runs: its template, named and labelled by the
    template's hash, defaulted and scheduled, with the digest each container's image was pulled
    at (``pulled``, else the image's own digest, else one made from its name)."""
    template = deployment["spec"]["template"]
    template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    name = deployment["metadata"]["name"]
    namespace = deployment["metadata"]["namespace"]
    pods = []
    for index in range(count):
        suffix = hashlib.sha256(f"{name}{index}".encode()).hexdigest()[:5]
        spec = copy.deepcopy(template["spec"])
        spec.update(
            nodeName="node-1",
            serviceAccountName="default",
            enableServiceLinks=True,
            preemptionPolicy="PreemptLowerPriority",
            priority=0,
        )
        spec.setdefault("volumes", []).append(
            {"name": f"kube-api-access-{suffix}", "projected": {"defaultMode": 420, "sources": []}}
        )
        statuses = []
        for container in spec["containers"]:
            container.setdefault("volumeMounts", []).append(
                {
                    "name": f"kube-api-access-{suffix}",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "readOnly": True,
                }
            )
            image = container["image"]
            repository = image.partition("@")[0].rpartition(":")[0] or image
            pinned = image.rpartition("@")[2] if "@" in image else None
            digest = pulled or pinned or "sha256:" + hashlib.sha256(image.encode()).hexdigest()
            statuses.append(
                {
                    "name": container["name"],
                    "image": image,
                    "imageID": f"{repository}@{digest}",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": CREATED}},
                }
            )
        labels = {**template["metadata"]["labels"], "pod-template-hash": template_hash}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{template_hash}-{suffix}",
                "namespace": namespace,
                "labels": labels,
                "annotations": dict(template["metadata"].get("annotations", {})),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": f"{name}-{template_hash}",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        live = served(pod)
        live["status"] = {
            "phase": "Running",
            "podIP": f"10.244.0.{index + 10}",
            "containerStatuses": statuses,
        }
        pods.append(live)
    return pods
