"""The spec's typed model: pydantic v2, strict about unknown fields, immutable.

Scalars arrive from the loader as the text the user wrote; pydantic turns ``"3"`` into ``3`` where
a field is numeric. Variable values stay text until :mod:`envspec.resolve` checks them against the
variable's declared type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    GetPydanticSchema,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from envspec import derive, targets
from envspec.secrets import SecretRef

VARIABLE_NAME = r"^[A-Z][A-Z0-9_]*$"
ENVIRONMENT_VARIABLE = "ENVSPEC_ENVIRONMENT"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SERVICE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
FLOATING_TAGS = frozenset({"latest"})
INTEGER_TEXT = r"^\s*[+-]?[0-9](_?[0-9])*(\.0*)?\s*$"
"""Text that pydantic reads as an integer (``3``, `` +3``, ``3_000``, ``3.0``)."""
DIGEST = r"^sha256:[0-9a-f]{64}$"
USER = r"^[0-9]{1,10}(:[0-9]{1,10})?$"
SIGNAL = r"^SIG[A-Z0-9+-]+$"
TASK_NAME = r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$"
MAX_ID = 2**31 - 1
SecurityLevel = Literal["restricted", "baseline"]
HOST = r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL)]
ServiceName = Annotated[str, StringConstraints(pattern=SERVICE_NAME)]
"""A DNS-1035 label: a Kubernetes Service's name, and the start of a Python class name."""


def dns_label(name: str) -> str:
    """``name`` made a DNS-1123 label: lowercase, other characters as '-', at most 63."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")


def class_name(service: str) -> str:
    """The settings class of a service: ``api-gateway`` -> ``ApiGatewaySettings``."""
    return "".join(part.capitalize() for part in service.split("-")) + "Settings"


VariableName = Annotated[str, StringConstraints(pattern=VARIABLE_NAME)]


def _target(name: str) -> str:
    target = targets.find(name)
    if target is None:
        raise ValueError(targets.unknown(name, targets.environment_targets()))
    if not target.per_environment:
        raise ValueError(f"'{name}' renders once for the whole spec; environments do not list it")
    return name


def _target_schema(schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    return {"type": "string", "enum": targets.environment_targets()}


TargetName = Annotated[
    str,
    AfterValidator(_target),
    GetPydanticSchema(get_pydantic_json_schema=_target_schema),
]
"""A target an environment renders: any per-environment target in the registry."""
VariableType = Literal["str", "int", "float", "bool", "url", "enum", "list"]


class Model(BaseModel):
    """Every spec model. Validators are built when a model is first used, not when the module
    is imported: most nested models are only ever validated as part of a whole spec."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, hide_input_in_errors=True, defer_build=True
    )


def _secret_ref(value: Any) -> Any:
    if isinstance(value, str):
        return SecretRef.parse(value)
    return value


def _secret_ref_schema(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """Parsed from its text, written back as its text (pydantic's PlainSerializer would import
    pydantic.functional_serializers: 8.7M instructions at every start)."""
    return core_schema.no_info_before_validator_function(
        _secret_ref,
        handler(source),
        serialization=core_schema.to_string_ser_schema(when_used="always"),
    )


SecretRefField = Annotated[
    SecretRef,
    GetPydanticSchema(_secret_ref_schema),
    WithJsonSchema({"type": "string", "pattern": r"^[a-z][a-z0-9-]*://[^#]+(#.+)?$"}),
]


class SecretSource(Model):
    """``{secret: "vault://path#key"}``: the value lives in a secret store."""

    secret: SecretRefField


class DerivedSource(Model):
    """``{from: "postgres://${USER}@${services.postgres.host}/db"}``: a value composed, in each
    environment, from other variables' values and from service facts (see :mod:`envspec.derive`)."""

    formula: Annotated[str, Field(alias="from")]

    @field_validator("formula")
    @classmethod
    def _parses(cls, formula: str) -> str:
        derive.parse(formula)
        return formula

    @property
    def tokens(self) -> tuple[derive.Token, ...]:
        return derive.parse(self.formula)


LiteralValue = str | list[str]
VariableValue = SecretSource | DerivedSource | str | list[str]


def _value(value: Any) -> VariableValue:
    """A variable's value validated by type, without trying each member of the union: text, a
    list of texts, ``{secret: ...}`` or ``{from: ...}``."""
    if type(value) is str:
        return value
    if isinstance(value, dict):
        if "from" in value:
            return DerivedSource.model_validate(value)
        return SecretSource.model_validate(value)
    if value is None:
        raise ValueError("a value is required here (write '' for an empty string)")
    if isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("list items must be scalars")
        return [str(item) for item in value]
    if isinstance(value, str | SecretSource | DerivedSource):
        return value
    raise ValueError("expected text, a list of texts, {secret: ...} or {from: ...}")


VariableValueField = Annotated[
    VariableValue,
    PlainValidator(_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": ["string", "number", "boolean"]},
                {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                {
                    "type": "object",
                    "properties": {"secret": {"type": "string"}},
                    "required": ["secret"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"from": {"type": "string"}},
                    "required": ["from"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class SecretsConfig(Model):
    """How secret variables reach Kubernetes in one environment.

    ``provider: fake`` (local environments only) makes envspec render the store itself: a
    SecretStore of the external-secrets ``fake`` provider holding the environment's literals."""

    mode: Literal["skeleton", "external-secrets"] = "skeleton"
    store: DnsLabel | None = None
    kind: Literal["SecretStore", "ClusterSecretStore"] = "ClusterSecretStore"
    provider: Literal["fake"] | None = None
    refresh_interval: Annotated[str, StringConstraints(pattern=r"^([0-9]+(ns|us|ms|s|m|h))+$")] = (
        "1h"
    )

    @model_validator(mode="before")
    @classmethod
    def _fake_store_is_namespaced(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("provider") == "fake" and "kind" not in data:
            return {**data, "kind": "SecretStore"}
        return data

    @model_validator(mode="after")
    def _store_for_external_secrets(self) -> SecretsConfig:
        if self.mode == "external-secrets" and self.store is None:
            raise ValueError("mode external-secrets needs 'store': the SecretStore to read from")
        if self.provider is not None and self.mode != "external-secrets":
            raise ValueError("'provider' belongs to mode external-secrets")
        if self.provider == "fake" and self.kind != "SecretStore":
            raise ValueError(
                "the fake provider's store is rendered as a SecretStore in the environment's "
                "namespace; leave out 'kind'"
            )
        return self


class Environment(Model):
    targets: tuple[TargetName, ...] = ("dotenv",)
    local: bool = False
    namespace: DnsLabel | None = None
    secrets: SecretsConfig = SecretsConfig()
    description: str = ""


PortNumber = Annotated[int, Field(ge=1, le=65535)]


class Port(Model):
    port: PortNumber
    host: PortNumber | None = None
    name: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")] | None
    ) = None
    protocol: Literal["TCP", "UDP"] = "TCP"


def _port(value: Any) -> Any:
    return {"port": value} if isinstance(value, str | int) else value


PortField = Annotated[Port, BeforeValidator(_port, json_schema_input_type=PortNumber | Port)]


class Healthcheck(Model):
    """A command run inside the container; compose ``healthcheck`` and Kubernetes exec probes."""

    command: Annotated[tuple[str, ...], Field(min_length=1)]
    interval: Annotated[int, Field(ge=1)] = 10
    timeout: Annotated[int, Field(ge=1)] = 5
    retries: Annotated[int, Field(ge=1)] = 5
    start_period: Annotated[int, Field(ge=0)] = 0


class Autoscale(Model):
    min: Annotated[int, Field(ge=1)]
    max: Annotated[int, Field(ge=1)]
    target_cpu: Annotated[int, Field(ge=1, le=100)] = 80

    @model_validator(mode="after")
    def _ordered(self) -> Autoscale:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _replicas(value: Any) -> Any:
    if isinstance(value, dict):
        return Autoscale.model_validate(value)
    if isinstance(value, str) and not re.fullmatch(INTEGER_TEXT, value):
        raise ValueError("expected a number of replicas or {min, max, target_cpu}")
    return value


Replicas = Annotated[Annotated[int, Field(ge=0)] | Autoscale, BeforeValidator(_replicas)]


class Volume(Model):
    path: Annotated[str, StringConstraints(pattern=r"^/")]
    size: Annotated[str, StringConstraints(pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$")] = "1Gi"

    @field_validator("path")
    @classmethod
    def _no_mode(cls, path: str) -> str:
        if ":" in path:
            raise ValueError(
                "a mount path cannot hold ':' (Compose would read ':ro' after it as a mount "
                "mode, Kubernetes as part of the path)"
            )
        return path


def _volume(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


VolumeField = Annotated[
    Volume,
    BeforeValidator(
        _volume, json_schema_input_type=Annotated[str, StringConstraints(pattern=r"^/")] | Volume
    ),
]
VolumeName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")]


class ResourceAmounts(Model):
    cpu: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?m?$")] | None = None
    memory: Annotated[str, StringConstraints(pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$")] | None = (
        None
    )


class Resources(Model):
    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()


def _matching(pattern: str, shape: str) -> Callable[[Any], Any]:
    """A check that a text matches ``pattern`` (as the JSON Schema says too), with a message
    that says what ``shape`` it should have."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.match(value):
            raise ValueError(f"expected {shape}")
        return value

    return check


Signal = Annotated[
    str,
    StringConstraints(pattern=SIGNAL),
    BeforeValidator(_matching(SIGNAL, "a signal name like SIGTERM")),
]
Digest = Annotated[
    str,
    StringConstraints(pattern=DIGEST),
    BeforeValidator(_matching(DIGEST, "sha256: and 64 lowercase hex digits")),
]
User = Annotated[
    str,
    StringConstraints(pattern=USER),
    BeforeValidator(_matching(USER, "a numeric '<uid>' or '<uid>:<gid>'")),
]


RESTRICTED_ROOT = "security restricted needs a user that is not root, and user 0 is root"


def is_root(user: str | None) -> bool:
    """Whether ``user`` names uid 0 (no user: the image's, unknown here)."""
    return user is not None and int(user.split(":")[0]) == 0


class Shutdown(Model):
    """How a container stops: after a ``pre_stop`` pause (Kubernetes: while its endpoints are
    removed), the stop ``signal``, then ``grace`` seconds before it is killed."""

    grace: Annotated[int, Field(ge=1, le=86400)] = 30
    signal: Signal | None = None
    pre_stop: Annotated[int, Field(ge=0, le=3600)] = 0


class KubernetesPatch(Model):
    """Validated escape hatch: mappings merged into the generated Kubernetes documents."""

    deployment: dict[str, Any] = {}
    pod: dict[str, Any] = {}
    container: dict[str, Any] = {}
    service: dict[str, Any] = {}


class ServiceFields(Model):
    """Fields a service has in the base and an overlay may change."""

    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/:-]*$")] | None = None
    version: Annotated[str, StringConstraints(pattern=IMAGE_TAG)] | None = None
    command: tuple[str, ...] | None = None
    ports: tuple[PortField, ...] | None = None
    replicas: Replicas | None = None
    depends_on: tuple[DnsLabel, ...] | None = None
    healthcheck: Healthcheck | None = None
    variables: tuple[VariableName, ...] | None = None
    values: dict[str, VariableValueField] | None = None
    """The service's own values for variables it receives: they win over the environment's."""
    volumes: dict[VolumeName, VolumeField] | None = None
    resources: Resources | None = None
    external: bool | None = None
    host: Annotated[str, StringConstraints(pattern=HOST)] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    compose: dict[str, Any] | None = None
    kubernetes: KubernetesPatch | None = None
    digest: Digest | None = None
    shutdown: Shutdown | None = None
    user: User | None = None
    security: SecurityLevel | None = None

    @field_validator("image")
    @classmethod
    def _no_tag_in_image(cls, image: str | None) -> str | None:
        if image is not None and ":" in image.rsplit("/", 1)[-1]:
            raise ValueError("put the tag in 'version', not in 'image'")
        return image

    @field_validator("user")
    @classmethod
    def _ids_fit(cls, user: str | None) -> str | None:
        if user is not None and any(int(part) > MAX_ID for part in user.split(":")):
            raise ValueError(f"user and group ids are at most {MAX_ID}")
        return user

    @model_validator(mode="after")
    def _restricted_not_root(self) -> ServiceFields:
        if self.security == "restricted" and is_root(self.user):
            raise ValueError(RESTRICTED_ROOT)
        return self


class ServicePatch(ServiceFields):
    """A service as an overlay changes it: every field optional."""


class Service(ServiceFields):
    """A service as the base declares it."""

    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/:-]*$")]
    environments: tuple[str, ...] | None = None
    description: str = ""


class Rule(Model):
    """A constraint on a variable's value, in all, local, non-local or one named environment."""

    where: str = "all"
    equals: str | None = None
    choices: tuple[str, ...] | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=0)] | None = None
    pattern: str | None = None
    not_contains: str | None = None
    message: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return pattern


def _list_default_only_for_lists(schema: dict[str, Any]) -> None:
    """For editors: a list as the default of a variable whose type is not ``list`` is refused."""
    schema["if"] = {"properties": {"type": {"const": "list"}}, "required": ["type"]}
    schema["then"] = {}
    schema["else"] = {"properties": {"default": {"not": {"type": "array"}}}}


class Variable(Model):
    model_config = ConfigDict(json_schema_extra=_list_default_only_for_lists)

    type: VariableType = "str"
    default: VariableValueField | None = None
    required: bool | None = None
    secret: bool = False
    choices: tuple[str, ...] | None = None
    separator: Annotated[str, StringConstraints(min_length=1)] | None = None
    description: str = ""
    example: str | None = None
    parity: Literal["strict", "default"] = "default"
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Variable:
        if self.type == "enum" and not self.choices:
            raise ValueError("type enum needs 'choices'")
        if self.type != "enum" and self.choices is not None:
            raise ValueError("'choices' belongs to type enum (use a rule for other types)")
        if self.separator is not None and self.type != "list":
            raise ValueError("'separator' belongs to type list")
        return self

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


Score = Annotated[int, Field(ge=0, le=100)]


class ParityScores(Model):
    """What a difference costs its row of the parity matrix (a row without one scores 100)."""

    external: Score = 95
    """A service managed outside (``external``) in some environments, at the same version."""
    orchestration: Score = 60
    """Workloads run by compose in some environments and by Kubernetes in others."""
    optional: Score = 90
    """An optional variable (``required: false``) left unset in some environments."""
    secrets: Score = 70
    """Secrets reach the application by different mechanisms (literal, shell, Secret, ...)."""
    declared: Score = 50
    """A declared difference (or a service limited by ``environments:``) without its own score."""
    secrets_kubernetes: Score = 90
    """Secrets are Kubernetes Secrets everywhere, but skeletons and ExternalSecrets are mixed."""


class Component(Model):
    """A row of the parity matrix that envspec cannot see (TLS, storage, logging, ...): each
    environment's text, and the score the team gives it."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)

    score: Score | None = None
    reason: str = ""

    @property
    def cells(self) -> dict[str, str]:
        """Each described environment's text."""
        return dict(self.__pydantic_extra__)


class ParityPolicy(Model):
    """Which attributes must be identical in every environment unless a difference is declared,
    and whether non-local environments must pin their images by digest, and how the parity matrix
    scores what differs."""

    images: bool = True
    versions: bool = True
    services: bool = True
    variables: bool = True
    strict_values: bool = True
    shutdown: bool = True
    security: bool = True
    digests: Literal["optional", "required"] = "optional"
    scores: ParityScores = ParityScores()
    components: dict[DnsLabel, Component] = {}
    target: Annotated[float, Field(ge=0, le=100)] | None = None


class Task(Model):
    """A one-off admin process (a migration) run with a service's image, variables and secrets."""

    service: DnsLabel
    command: Annotated[tuple[str, ...], Field(min_length=1)]
    when: Literal["manual", "before-deploy"] = "manual"
    description: str = ""


class DeclaredDifference(Model):
    """A difference an overlay declares on purpose (``differences:``), with its reason."""

    path: Annotated[str, StringConstraints(min_length=1)]
    reason: Annotated[str, StringConstraints(min_length=1)]
    environments: tuple[str, ...] | None = None
    score: Score | None = None


class Overlay(Model):
    variables: dict[str, VariableValueField] = {}
    services: dict[str, ServicePatch] = {}
    differences: tuple[DeclaredDifference, ...] = ()


class ComposeDefinitions(Model):
    """Top-level compose definitions the services refer to, merged into every compose file."""

    networks: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    configs: dict[str, Any] = {}


class Spec(Model):
    version: int
    project: DnsLabel
    description: str = ""
    environments: Annotated[dict[DnsLabel, Environment], Field(min_length=1)]
    services: dict[ServiceName, Service] = {}
    variables: dict[VariableName, Variable] = {}
    tasks: dict[Annotated[str, StringConstraints(pattern=TASK_NAME)], Task] = {}
    parity: ParityPolicy = ParityPolicy()
    compose: ComposeDefinitions = ComposeDefinitions()

    @field_validator("version")
    @classmethod
    def _supported(cls, version: int) -> int:
        if version != 1:
            raise ValueError("this envspec reads spec version 1")
        return version


class SpecBundle(NamedTuple):
    """A validated spec: the base and each environment's overlay (empty when it has no file).

    A plain container of models already validated: as a pydantic model it would build the
    validator of the whole spec a second time, when the module is imported."""

    base: Spec
    overlays: dict[str, Overlay]
