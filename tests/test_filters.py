"""Properties of the template filters that are not covered by reading outputs back."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from envspec.render.filters import comment

BREAKS = re.compile("[\x00-\x1f\x7f\u2028\u2029]")


@given(st.text())
def test_comment_is_one_clean_line_with_the_same_words(text: str) -> None:
    body = comment(text)
    assert body == " ".join(BREAKS.sub(" ", text).split())
    assert not BREAKS.search(body) and "\x85" not in body
    assert body == body.strip() and "  " not in body
