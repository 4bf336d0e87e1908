"""``settings.py``: a typed pydantic-settings class for the application, from the same spec.

Secret variables become ``SecretStr``, enums ``Literal``s, lists ``list[str]`` (JSON, or split on
the variable's separator), required variables have no default. The spec's rules are checked when
the application starts, each in its scope: envspec writes ``ENVSPEC_ENVIRONMENT`` into every
artifact, so the class knows which environment it runs in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

from envspec.models import (
    ENVIRONMENT_VARIABLE,
    DerivedSource,
    SecretSource,
    Spec,
    Variable,
    VariableValue,
    class_name,
)
from envspec.render.base import RenderedFile, Templates
from envspec.resolve import ResolvedEnvironment, ResolvedVariable, coerce, typed_rule

_BASE_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "url": "str"}


class SettingsField(NamedTuple):
    name: str
    annotation: str
    default: str | None
    description: str
    arguments: str
    """What goes in the field's ``Field(...)``: its default, if any, and its description."""
    declaration: str
    """The field's line in its class: ``NAME: annotation = Field(arguments)``."""


class SettingsRenderer:
    scope: Final = "project"
    needs_environments: Final = False

    def render(
        self,
        spec: Spec,
        environments: Mapping[str, ResolvedEnvironment],
        defaults: Mapping[str, ResolvedVariable],
        templates: Templates,
    ) -> Iterable[RenderedFile]:
        fields = {
            name: _field(name, variable, defaults.get(name))
            for name, variable in spec.variables.items()
        }
        classes = [SettingsClass("Settings", "Every variable of the spec.", tuple(fields.values()))]
        for service_name, service in spec.services.items():
            names = service.variables if service.variables is not None else tuple(spec.variables)
            own = service.values or {}
            if names:
                classes.append(
                    SettingsClass(
                        class_name(service_name),
                        f"The variables service '{service_name}' receives.",
                        tuple(
                            _own_field(name, spec.variables[name], own[name])
                            if name in own
                            else fields[name]
                            for name in names
                        ),
                    )
                )
        rules = {
            name: [
                typed_rule(variable, rule).model_dump(exclude_none=True) for rule in variable.rules
            ]
            for name, variable in spec.variables.items()
            if variable.rules
        }
        content = templates.render(
            "settings/settings.py.j2",
            project=spec.project,
            classes=classes,
            rules=rules,
            environments=tuple(spec.environments),
            local=tuple(name for name, env in spec.environments.items() if env.local),
            environment_variable=ENVIRONMENT_VARIABLE,
        )
        yield RenderedFile("settings.py", content)


class SettingsClass(NamedTuple):
    name: str
    doc: str
    fields: tuple[SettingsField, ...]


def _field(name: str, variable: Variable, default_value: ResolvedVariable | None) -> SettingsField:
    if default_value is not None:
        return _settings_field(name, variable, default_value.value, variable.is_required)
    derived = isinstance(variable.default, DerivedSource)  # composed in every environment
    return _settings_field(name, variable, None, variable.is_required or derived)


def _own_field(name: str, variable: Variable, value: VariableValue) -> SettingsField:
    """A field of a service's class where the base gives the service its own value: that value
    is the default when it is a literal; a reference or a formula makes the field required."""
    if isinstance(value, SecretSource | DerivedSource):
        return _settings_field(name, variable, None, True)
    try:
        text = coerce(variable, value)
    except ValueError:  # resolution refuses it (this may render before resolution ends)
        text = None
    return _settings_field(name, variable, text, False)


def _settings_field(
    name: str, variable: Variable, text: str | None, required: bool
) -> SettingsField:
    annotation = _annotation(variable)
    default = _default(variable, text)
    if default is None and not required:
        annotation += " | None"
        default = "None"
    arguments = (f"{default}, " if default is not None else "") + (
        f"description={variable.description!r}"
    )
    declaration = f"{name}: {annotation} = Field({arguments})"
    return SettingsField(name, annotation, default, variable.description, arguments, declaration)


def _annotation(variable: Variable) -> str:
    if variable.secret:
        return "SecretStr"
    if variable.type == "enum":
        assert variable.choices is not None
        return "Literal[" + ", ".join(repr(choice) for choice in variable.choices) + "]"
    if variable.type == "list":
        if variable.separator is not None:
            return f"Annotated[list[str], NoDecode, _split({variable.separator!r})]"
        return "list[str]"
    return _BASE_TYPES[variable.type]


def _default(variable: Variable, text: str | None) -> str | None:
    """The Python literal of a variable's default, from the text resolved for it."""
    if text is None or variable.secret:
        return None
    value: Any
    if variable.type == "int":
        value = int(text)
    elif variable.type == "float":
        value = float(text)
    elif variable.type == "bool":
        value = text == "true"
    elif variable.type == "list":
        value = json.loads(text) if variable.separator is None else text.split(variable.separator)
    else:
        value = text
    return repr(value)
