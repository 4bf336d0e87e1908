"""Values are what they claim: text that envspec accepts as an int or a float is read as that
same number by the generated pydantic-settings class, whatever characters it holds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from envspec.models import Variable
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
