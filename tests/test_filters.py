"""Properties of value checks and template filters that reading outputs back does not cover."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from envspec.render.filters import (
    CannotCarry,
    YamlScalars,
    check_compose_value,
    check_kubernetes_value,
    comment,
    compose_value,
    kubernetes_value,
    yaml_scalar,
)
from envspec.resolve import is_url

BREAKS = re.compile("[\x00-\x1f\x7f\u2028\u2029]")


@given(st.text())
def test_comment_is_one_clean_line_with_the_same_words(text: str) -> None:
    body = comment(text)
    assert body == " ".join(BREAKS.sub(" ", text).split())
    assert not BREAKS.search(body) and "\x85" not in body
    assert body == body.strip() and "  " not in body


def _refusal(function: Callable[[str], object], value: str) -> str | None:
    try:
        function(value)
    except CannotCarry as error:
        return str(error)
    return None


EDGES = st.one_of(
    st.sampled_from([*"a$ \x00\t\n\r\x7f\x85\x9f\xa0\u2028\ufffe\uffff"]),
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010, exclude_categories=()),
)
ANY_TEXT = st.one_of(st.text(), st.text(EDGES))


@settings(max_examples=400)
@given(ANY_TEXT)
def test_value_checks_refuse_what_the_quoting_refuses(value: str) -> None:
    assert _refusal(check_compose_value, value) == _refusal(compose_value, value)
    assert _refusal(check_kubernetes_value, value) == _refusal(kubernetes_value, value)


@given(st.lists(st.one_of(st.text(), st.sampled_from(["ON", "Null", "y", "A_B", "-x", "1"]))))
def test_quoting_names_once_writes_what_yaml_scalar_writes(texts: list[str]) -> None:
    scalars = YamlScalars()
    for text in texts + texts:
        assert scalars[text] == yaml_scalar(text)
    assert set(scalars) == set(texts)


PIECES = st.sampled_from([*"aZ09+.-:/@?#[]%!$&'(*,;=~_ \t\u00e9\u3002", "://", "http"])
URL_TEXT = st.one_of(
    st.lists(PIECES, max_size=30).map("".join),
    st.tuples(
        st.sampled_from(["http", "s3", "a+b.c-d", "1x", ""]),
        st.sampled_from(["://", ":/", ":"]),
        st.text(st.sampled_from("aZ09.-_~%!$&'(*,;=:@[]\u00e9"), max_size=12),
        st.sampled_from(["", "/", "?", "#", " "]),
        st.lists(PIECES, max_size=8).map("".join),
    ).map("".join),
)


def _urllib_reads_a_url(text: str) -> bool | str:
    try:
        parts = urlsplit(text)
    except ValueError as error:
        return str(error)
    return bool(parts.scheme and (parts.netloc or parts.path) and not re.search(r"\s", text))


@settings(max_examples=400)
@given(URL_TEXT)
def test_url_check_agrees_with_urllib(text: str) -> None:
    try:
        found: bool | str = is_url(text)
    except ValueError as error:
        found = str(error)
    assert found == _urllib_reads_a_url(text)
