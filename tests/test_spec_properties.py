"""Generated specs: every combination of types, defaults, overlays and secrets either validates
and renders, or fails with positioned problems, exactly when a small independent oracle says so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import minimal, run, write_spec
from tests.readers import python_dotenv

CANARY = "canary-9f3e1c"
ENVIRONMENTS = {"development": True, "production": False}
"""Each environment and whether it is local."""

VALUES: dict[str, tuple[Any, Any]] = {
    "str": ("plain text", "nul\x00inside"),
    "int": ("42", "forty-two"),
    "bool": ("yes", "maybe"),
    "enum": ("blue", "purple"),
    "list": (["a", "b"], "not a list"),
    "url": ("https://db.internal:5432/app", "not a url"),
}
"""A valid and an invalid literal for each variable type."""

SOURCES = ("absent", "valid", "invalid", "secret-ref")
OVERLAY_SOURCES = (*SOURCES, "null")


@dataclass(frozen=True)
class VariableCase:
    kind: str
    secret: bool
    default: str
    overlays: dict[str, str]

    def literal(self, source: str, environment: str = "") -> Any:
        if self.secret:
            return f"{CANARY}-{environment}" if source == "valid" else f"{CANARY}\x00"
        return VALUES[self.kind][0 if source == "valid" else 1]

    def declaration(self) -> dict[str, Any]:
        declared: dict[str, Any] = {"type": self.kind, "secret": self.secret}
        if self.kind == "enum":
            declared["choices"] = ["blue", "green"]
        if self.default != "absent":
            declared["default"] = self.value(self.default, "default")
        return declared

    def value(self, source: str, environment: str) -> Any:
        if source == "secret-ref":
            return {"secret": "vault://app/settings#key"}
        if source == "null":
            return None
        return self.literal(source, environment)

    def problems(self) -> int:
        """How many problems envspec must report for this variable (the oracle), once every
        file has the right shape (an overlay's null is a shape problem, reported alone)."""
        found = int(self.default == "invalid")
        for environment, local in ENVIRONMENTS.items():
            source = self.overlays.get(environment, "absent")
            used = self.default if source == "absent" else source
            from_overlay = source != "absent"
            if used == "absent":
                found += self.default == "absent"
            elif (used == "invalid" and from_overlay) or (
                used == "valid" and self.secret and not local
            ):
                found += 1
        return found


@st.composite
def variable_cases(draw: st.DrawFn) -> VariableCase:
    secret = draw(st.booleans())
    kind = "str" if secret else draw(st.sampled_from(sorted(VALUES)))
    overlays = {environment: draw(st.sampled_from(OVERLAY_SOURCES)) for environment in ENVIRONMENTS}
    return VariableCase(kind, secret, draw(st.sampled_from(SOURCES)), overlays)


def _spec(cases: list[VariableCase]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = [f"VAR_{index}" for index in range(len(cases))]
    base = minimal(
        variables={name: case.declaration() for name, case in zip(names, cases, strict=True)}
    )
    base["environments"]["development"]["targets"] = ["dotenv"]
    overlays: dict[str, Any] = {}
    for environment in ENVIRONMENTS:
        values = {
            name: case.value(case.overlays[environment], environment)
            for name, case in zip(names, cases, strict=True)
            if case.overlays[environment] != "absent"
        }
        overlays[environment] = {"variables": values}
    return base, overlays


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(st.lists(variable_cases(), min_size=1, max_size=5))
def test_generated_specs_validate_exactly_when_the_oracle_says(
    tmp_path_factory: pytest.TempPathFactory, cases: list[VariableCase]
) -> None:
    tmp_path = tmp_path_factory.mktemp("spec")
    base, overlays = _spec(cases)
    root = write_spec(tmp_path / "spec", base, overlays)
    out = tmp_path / "out"
    unset = sum(list(case.overlays.values()).count("null") for case in cases)
    expected = unset or sum(case.problems() for case in cases)

    validated = run("validate", "--spec", str(root))
    rendered = run("render", "--all", "--spec", str(root), "--out", str(out))
    for result in (validated, rendered):
        assert CANARY not in result.output
        assert "internal error" not in result.output
    if expected:
        assert validated.exit_code == rendered.exit_code == 1, validated.output
        problems = [line for line in validated.stderr.splitlines() if ": " in line]
        problems = [line for line in problems if not line.startswith("envspec:")]
        assert len(problems) == expected, validated.output
        assert all(line.split(":")[1].isdigit() for line in problems), problems
        assert not out.exists()
        return
    assert validated.exit_code == rendered.exit_code == 0, validated.output
    dotenv = python_dotenv(out / "development" / ".env.development")
    for index, case in enumerate(cases):
        source, origin = case.overlays["development"], "development"
        if source == "absent":
            source, origin = case.default, "default"
        if source == "valid" and case.kind in ("str", "int"):
            assert dotenv[f"VAR_{index}"] == case.literal("valid", origin)
        elif source in ("absent", "secret-ref"):
            assert f"VAR_{index}" not in dotenv
    for path in out.rglob("*"):
        if path.is_file() and "development" not in path.parts:
            assert CANARY not in path.read_text(encoding="utf-8"), path
