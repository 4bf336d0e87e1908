"""Values are what they claim: text that envspec accepts as an int or a float is read as that
same number by the generated pydantic-settings class, whatever characters it holds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BeforeValidator, TypeAdapter, ValidationError

from envspec.models import DerivedSource, SecretSource, Variable
from envspec.resolve import coerce

NUMBERISH = st.one_of(
    st.text(alphabet="0123456789\u0661\u0662\u0663\u06f5\u0966\u0967.eE+-_ \t", max_size=12),
    st.text(max_size=8),
)


def _accepted(kind: str, text: str) -> bool:
    try:
        coerce(Variable(type=kind), text)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("kind, reader", [("int", int), ("float", float)])
@given(text=NUMBERISH)
def test_accepted_numbers_are_read_alike_by_pydantic(kind: str, reader: type, text: str) -> None:
    if not _accepted(kind, text):
        return
    assert text.isascii(), "only ASCII digits are accepted"
    read: float = TypeAdapter(reader).validate_python(text)
    assert read == reader(text) and (kind == "int" or math.isfinite(read))


@pytest.mark.parametrize(
    "text",
    ["\u0661\u0662", "\u0967\u0968", "1_000", "\u0661.\u0665", " 1.5", "inf", "nan", "1e999"],
)
def test_other_digits_are_refused(text: str) -> None:
    assert not _accepted("float", text)
    assert not _accepted("int", text)


def _smart_union_value(value: object) -> object:
    """Values as the smart union of every value type validated them, for comparison."""
    if isinstance(value, dict):
        if "from" in value:
            return DerivedSource.model_validate(value)
        return SecretSource.model_validate(value)
    if value is None:
        raise ValueError("a value is required here (write '' for an empty string)")
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        raise ValueError("list items must be scalars")
    return value


SMART_UNION: TypeAdapter[object] = TypeAdapter(
    Annotated[SecretSource | DerivedSource | str | list[str], BeforeValidator(_smart_union_value)]
)
TEXT = st.text(max_size=6)
LOADED_VALUES = st.one_of(
    TEXT,
    st.none(),
    st.lists(st.one_of(TEXT, st.none(), st.dictionaries(TEXT, TEXT, max_size=1)), max_size=3),
    st.dictionaries(
        st.sampled_from(["secret", "from", "other"]),
        st.one_of(
            st.sampled_from(["vault://app/db#password", "nope://x", "k8s://Bad", "${A}", "${"]),
            TEXT,
            st.none(),
        ),
        max_size=2,
    ),
)
"""What the loader can give as a value: text, null, lists and mappings of them."""


@given(value=LOADED_VALUES)
def test_values_validate_as_the_smart_union_did(value: object) -> None:
    """The value validator goes by the input's type instead of trying each member of the
    union: what the loader gives is accepted, or refused with the same errors, alike."""

    def outcome(validate: Callable[[object], object], loc: slice) -> object:
        try:
            return "valid", validate(value)
        except ValidationError as error:
            details = error.errors(include_url=False)
            return "refused", [(e["type"], e["msg"], e["loc"][loc]) for e in details]

    def field(raw: object) -> object:
        return Variable.model_validate({"default": raw}).default

    found = outcome(field, slice(1, None))  # without the field's name
    if value is None:
        assert found == ("valid", None), "a default may be left out"
    else:
        assert found == outcome(SMART_UNION.validate_python, slice(None))
