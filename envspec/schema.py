"""The spec's JSON Schema for editors, generated from the models (committed under ``schema/``).

envspec reads every scalar as the text the user wrote and lets the models type it, while an
editor's YAML 1.2 reader types scalars itself: ``version: 1.10`` reaches the editor as a number,
``local: yes`` as a string, ``replicas: "3"`` as a string. The schema is written for what the
editor sees: a text field also takes numbers and booleans, a number also takes the text that
envspec reads as that number, a boolean the words envspec reads as true or false.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from envspec.models import INTEGER_TEXT, Overlay, Spec

BOOLEAN_WORDS = ("0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes")
"""The words pydantic reads as a boolean, in any letter case."""


BASE_KEYS = ("version", "project", "environments")
"""Keys that make a file a base spec; a file with none of them is read as an overlay."""


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


class EditorSchema(GenerateJsonSchema):
    """JSON Schema of the models as a YAML 1.2 editor sees the spec (see the module's doc)."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        return {"anyOf": [super().str_schema(schema), {"type": ["number", "boolean"]}]}

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        return {"anyOf": [super().int_schema(schema), {"type": "string", "pattern": INTEGER_TEXT}]}

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        keys = schema.get("keys_schema")
        if keys is not None and keys["type"] == "str" and "pattern" in keys:
            json_schema["propertyNames"] = {"pattern": keys["pattern"]}
        return json_schema

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        words = "|".join(_any_case(word) for word in BOOLEAN_WORDS)
        return {
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "enum": [0, 1]},
                {"type": "string", "pattern": f"^({words})$"},
            ]
        }


def spec_schema() -> str:
    definitions: dict[str, Any] = {}
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "envspec spec (envspec.yaml) or overlay (environments/<env>.yaml)",
        "if": {"anyOf": [{"required": [key]} for key in BASE_KEYS]},
        "then": {"$ref": "#/$defs/Spec"},
        "else": {"$ref": "#/$defs/Overlay"},
        "$defs": definitions,
    }
    for model in (Spec, Overlay):
        generated = model.model_json_schema(
            ref_template="#/$defs/{model}", schema_generator=EditorSchema
        )
        definitions.update(generated.pop("$defs", {}))
        definitions[model.__name__] = generated
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
