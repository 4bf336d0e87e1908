"""The spec's JSON Schema, generated from the models (committed under ``schema/``)."""

from __future__ import annotations

import json
from typing import Any

from envspec.models import Overlay, Spec


def spec_schema() -> str:
    definitions: dict[str, Any] = {}
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "envspec spec (envspec.yaml) or overlay (environments/<env>.yaml)",
        "anyOf": [{"$ref": "#/$defs/Spec"}, {"$ref": "#/$defs/Overlay"}],
        "$defs": definitions,
    }
    for model in (Spec, Overlay):
        generated = model.model_json_schema(ref_template="#/$defs/{model}")
        definitions.update(generated.pop("$defs", {}))
        definitions[model.__name__] = generated
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
