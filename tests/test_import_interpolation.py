"""The importer resolves interpolation as Compose v2 does: drawn texts (``$``, ``$$``, ``$VAR``,
``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:+x}``, ``${VAR?e}``, nested) with drawn .env
values, many texts to one compose file, read by ``docker compose config`` of the original and of
the file envspec renders from the import. Each example runs the binary a few times: few examples,
no shrinking (a failure prints the texts as drawn). A text init refuses must be one that Compose
refuses too, or that Compose v1 and v2 read differently (a lone ``$``: v2 keeps it, v1 refuses
it)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from tests.helpers import dump, run
from tests.importing import init_from_compose
from tests.readers import compose_config_or_error, compose_v1, compose_v2

NAMES = ("A", "B", "E", "U")
OPERATORS = (":-", "-", ":+", "+", ":?", "?")
_LITERAL = st.text(alphabet="ab -:{}/", max_size=3)
_ODD = st.sampled_from(["$", "${", "}", "${A:}", "${A }", "$1"])
_PROBLEM = re.compile(r"\S+:[0-9]+:[0-9]+: ")
_DOTENV_LIMIT = "of 'development' cannot carry this value exactly: '${' is expanded by"
"""A literal ``${`` (``$${`` in compose) is no text a .env file can hold: the spec is written
and says so, and compose renders it."""
_REFUSED = re.compile(r"services\.s\.environment\.T([0-9]+): cannot import")


def _texts(depth: int) -> st.SearchStrategy[str]:
    name = st.sampled_from(NAMES)
    parts = [
        _LITERAL,
        st.just("$$"),
        name.map(lambda n: f"${n}"),
        name.map(lambda n: f"${{{n}}}"),
    ]
    if depth:
        parts.append(
            st.builds(
                lambda n, operator, inner: f"${{{n}{operator}{inner}}}",
                name,
                st.sampled_from(OPERATORS),
                _texts(depth - 1),
            )
        )
    return st.lists(st.one_of(*parts), max_size=4).map("".join)


_TEXT = _texts(2)
_ODD_TEXT = st.tuples(_TEXT, _ODD, _TEXT).map("".join)


_ENVIRONMENT = st.fixed_dictionaries(
    {name: st.none() | st.text(alphabet="xyz-:{}/", max_size=3) for name in NAMES}
)


def _write(folder: Path, texts: dict[int, str], environment: dict[str, str | None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    variables = {f"T{index}": text for index, text in texts.items()}
    compose = folder / "docker-compose.yml"
    compose.write_text(dump({"services": {"s": {"image": "x:1", "environment": variables}}}))
    (folder / ".env").write_text(
        "".join(f"{name}={value}\n" for name, value in environment.items() if value is not None)
    )
    return compose


def _environment(config: dict[str, Any]) -> dict[str, Any]:
    found = dict(config["services"]["s"].get("environment") or {})
    found.pop("ENVSPEC_ENVIRONMENT", None)
    return found


@settings(max_examples=25, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@example(  # compose-go's quirks: `{` counts towards the closing brace; a default is read first
    texts=["${U:-{x}y}", "${U:-{{x}y}", "${A:-a}b}", "${U:-${U:-}}}", "$$${A}", "${E:+x}"],
    odd=["${A:-${U:?}}"],
    environment={"A": "a", "B": None, "E": "", "U": None},
)
@given(
    texts=st.lists(_TEXT, min_size=1, max_size=8),
    odd=st.lists(_ODD_TEXT, max_size=1),
    environment=_ENVIRONMENT,
)
def test_interpolation_is_compose_v2s(
    texts: list[str], odd: list[str], environment: dict[str, str | None]
) -> None:
    remaining = dict(enumerate(texts + odd))
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        while True:
            compose = _write(root / "source", remaining, environment)
            spec = root / f"spec{len(remaining)}"
            result = init_from_compose(spec, compose, compose.with_name(".env"))
            refused = _REFUSED.search(result.output)
            if refused is None:
                break
            text = remaining.pop(int(refused.group(1)))
            alone = _write(root / "alone", {0: text}, environment)
            v2, _ = compose_config_or_error(compose_v2(), alone)
            v1, _ = compose_config_or_error(compose_v1(), alone)
            assert v2 is None or v1 is None, f"init refuses {text!r}:\n{result.output}"
        problems = [line for line in result.output.splitlines() if _PROBLEM.match(line)]
        assert all(_DOTENV_LIMIT in problem for problem in problems), result.output
        rendered = run("render", "--env", "development", "--target", "compose", "--spec", str(spec))
        assert rendered.exit_code == 0, rendered.output
        original, error = compose_config_or_error(compose_v2(), compose)
        assert original is not None, error
        imported, error = compose_config_or_error(
            compose_v2(), spec / "build" / "development" / "docker-compose.yaml"
        )
        assert imported is not None, error
        assert _environment(imported) == _environment(original), remaining
