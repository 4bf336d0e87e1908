"""The parity matrix's rows and scores, each computed from a spec written for it and compared
with the rules of docs/spec.md ("Parity score")."""

from __future__ import annotations

import json
import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from envspec.parity import Matrix, Row
from tests.helpers import REPO, minimal, run, write_spec

PARITY_SCHEMA = Draft202012Validator(
    json.loads((REPO / "schema" / "parity.schema.json").read_text())
)
DEFAULTS = {
    "external": 95,
    "orchestration": 60,
    "optional": 90,
    "secrets": 70,
    "declared": 50,
    "secrets_kubernetes": 90,
}


def _parity(root: Path) -> dict[str, Any]:
    result = run("parity", "--format", "json", "--spec", str(root))
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    PARITY_SCHEMA.validate(report)
    return report


def _rows(root: Path) -> dict[str, tuple[str, int]]:
    return {row["component"]: (row["verdict"], row["score"]) for row in _parity(root)["rows"]}


def _kubernetes_both(**extra: Any) -> dict[str, Any]:
    """Two Kubernetes environments, so that only the row under test differs."""
    return minimal(
        environments={
            "staging": {"targets": ["kubernetes"]},
            "production": {"targets": ["kubernetes"]},
        },
        **extra,
    )


def test_identical_environments_score_100(tmp_path: Path) -> None:
    report = _parity(write_spec(tmp_path, _kubernetes_both()))
    assert report["score"] == 100.0
    assert {row["component"] for row in report["rows"]} == {
        "services.web",
        "orchestration",
        "variables",
        "secrets",
    }
    assert all(row["verdict"] == "same" and "reason" not in row for row in report["rows"])


def test_a_service_managed_outside_at_the_same_version_scores_external(tmp_path: Path) -> None:
    spec = _kubernetes_both(services={"db": {"image": "postgres", "version": "15.5"}})
    root = write_spec(
        tmp_path / "a", spec, {"production": {"services": {"db": {"external": True}}}}
    )
    report = _parity(root)
    db = next(row for row in report["rows"] if row["component"] == "services.db")
    assert db == {
        "component": "services.db",
        "cells": {"staging": "postgres:15.5", "production": "external postgres:15.5"},
        "verdict": "expected",
        "score": 95,
    }
    spec["parity"] = {"scores": {"external": 99}}
    changed = write_spec(
        tmp_path / "b", spec, {"production": {"services": {"db": {"external": True}}}}
    )
    assert _rows(changed)["services.db"] == ("expected", 99)


def test_a_declared_difference_scores_its_own_score_or_the_default(tmp_path: Path) -> None:
    spec = _kubernetes_both()
    declared: dict[str, Any] = {"path": "services.web.version", "reason": "a canary"}
    overlay: dict[str, Any] = {
        "services": {"web": {"version": "1.1.0"}},
        "differences": [declared],
    }
    assert _rows(write_spec(tmp_path / "default", spec, {"production": overlay}))[
        "services.web"
    ] == ("declared", 50)
    declared["score"] = 80
    assert _rows(write_spec(tmp_path / "own", spec, {"production": overlay}))["services.web"] == (
        "declared",
        80,
    )
    overlay["services"]["web"]["external"] = True
    assert _rows(write_spec(tmp_path / "both", spec, {"production": overlay}))["services.web"] == (
        "declared",
        80,
    ), "the lowest of the row's scores (80 < 95)"
    del declared["score"]
    spec["parity"] = {"scores": {"declared": 40}}
    assert _rows(write_spec(tmp_path / "changed", spec, {"production": overlay}))[
        "services.web"
    ] == ("declared", 40)


def test_an_undeclared_difference_scores_0(tmp_path: Path) -> None:
    root = write_spec(
        tmp_path, _kubernetes_both(), {"production": {"services": {"web": {"image": "other/web"}}}}
    )
    report = _parity(root)
    assert _rows(root)["services.web"] == ("undeclared", 0)
    assert report["score"] == 75.0


def test_a_service_limited_by_environments_counts_as_declared(tmp_path: Path) -> None:
    spec = _kubernetes_both(
        services={
            "web": {"image": "example/web", "version": "1.0.0"},
            "mail": {"image": "mailhog/mailhog", "version": "v1.0.1", "environments": ["staging"]},
        }
    )
    rows = _parity(write_spec(tmp_path / "a", spec))["rows"]
    mail = next(row for row in rows if row["component"] == "services.mail")
    assert mail["cells"] == {"staging": "mailhog/mailhog:v1.0.1", "production": "<absent>"}
    assert (mail["verdict"], mail["score"], mail["reason"]) == ("declared", 50, "only in staging")
    declaration = {"path": "services.mail", "reason": "SES in production", "score": 75}
    root = write_spec(tmp_path / "b", spec, {"production": {"differences": [declaration]}})
    assert run("validate", "--spec", str(root)).exit_code == 0
    mail = next(row for row in _parity(root)["rows"] if row["component"] == "services.mail")
    assert (mail["score"], mail["reason"]) == (75, "SES in production")


def test_orchestration_scores_60_when_compose_and_kubernetes_are_mixed(tmp_path: Path) -> None:
    spec = minimal()
    row = next(
        r
        for r in _parity(write_spec(tmp_path / "a", spec))["rows"]
        if r["component"] == "orchestration"
    )
    assert row["cells"] == {"development": "compose", "production": "kubernetes"}
    assert (row["verdict"], row["score"]) == ("expected", 60)
    spec["environments"]["development"]["targets"] = ["dotenv"]
    spec["parity"] = {"scores": {"orchestration": 30}}
    row = next(
        r
        for r in _parity(write_spec(tmp_path / "b", spec))["rows"]
        if r["component"] == "orchestration"
    )
    assert row["cells"] == {"development": "none", "production": "kubernetes"}
    assert row["score"] == 30
    spec["environments"]["development"]["targets"] = ["dotenv", "kubernetes"]
    assert _rows(write_spec(tmp_path / "c", spec))["orchestration"] == ("same", 100)


def test_an_optional_variable_unset_somewhere_scores_optional(tmp_path: Path) -> None:
    spec = _kubernetes_both(
        variables={"GREETING": {"default": "hello"}, "TRACING": {"required": False}}
    )
    root = write_spec(tmp_path / "a", spec, {"production": {"variables": {"TRACING": "on"}}})
    row = next(r for r in _parity(root)["rows"] if r["component"] == "variables")
    assert row["cells"] == {"staging": "1 variables (no TRACING)", "production": "2 variables"}
    assert (row["verdict"], row["score"]) == ("declared", 90)
    declaration = {"path": "variables.TRACING", "reason": "traces in production only", "score": 97}
    root = write_spec(
        tmp_path / "b",
        spec,
        {"production": {"variables": {"TRACING": "on"}, "differences": [declaration]}},
    )
    row = next(r for r in _parity(root)["rows"] if r["component"] == "variables")
    assert (row["score"], row["reason"]) == (97, "traces in production only")


def test_a_declared_strict_value_counts_in_variables(tmp_path: Path) -> None:
    spec = _kubernetes_both(variables={"REGION": {"default": "eu", "parity": "strict"}})
    overlay = {
        "variables": {"REGION": "us"},
        "differences": [{"path": "variables.REGION", "reason": "US customers"}],
    }
    assert _rows(write_spec(tmp_path, spec, {"production": overlay}))["variables"] == (
        "declared",
        50,
    )


def _secrets(tmp_path: Path, staging: dict[str, Any], production: dict[str, Any]) -> dict[str, Any]:
    spec = _kubernetes_both(variables={"TOKEN": {"secret": True}})
    spec["environments"]["staging"]["secrets"] = staging
    spec["environments"]["production"]["secrets"] = production
    reference = {"variables": {"TOKEN": {"secret": "vault://app/token#value"}}}
    root = write_spec(tmp_path, spec, {"staging": reference, "production": reference})
    return next(r for r in _parity(root)["rows"] if r["component"] == "secrets")


def test_secrets_score_by_mechanism(tmp_path: Path) -> None:
    external = {"mode": "external-secrets", "store": "vault"}
    same = _secrets(tmp_path / "same", external, external)
    assert (same["cells"], same["verdict"], same["score"]) == (
        {"staging": "external-secrets", "production": "external-secrets"},
        "same",
        100,
    )
    mixed = _secrets(tmp_path / "mixed", {"mode": "skeleton"}, external)
    assert mixed["cells"] == {"staging": "secret", "production": "external-secrets"}
    assert (mixed["verdict"], mixed["score"]) == ("expected", 90)
    compose = _parity(
        write_spec(
            tmp_path / "compose",
            minimal(variables={"TOKEN": {"secret": True}}),
            {
                "development": {"variables": {"TOKEN": "local-token"}},
                "production": {"variables": {"TOKEN": {"secret": "vault://app/token"}}},
            },
        )
    )
    row = next(r for r in compose["rows"] if r["component"] == "secrets")
    assert row["cells"] == {"development": "literal", "production": "secret"}
    assert row["score"] == 70
    assert "local-token" not in json.dumps(compose)


def test_components_count_as_the_team_scores_them(tmp_path: Path) -> None:
    spec = minimal(
        parity={
            "components": {
                "tls": {
                    "development": "none",
                    "production": "cert-manager",
                    "score": 80,
                    "reason": "plain HTTP on laptops",
                },
                "logging": {"development": "stdout", "production": "stdout"},
                "storage": {"development": "local disk", "production": "EBS"},
            }
        }
    )
    rows = {r["component"]: r for r in _parity(write_spec(tmp_path, spec))["rows"]}
    assert rows["components.tls"] == {
        "component": "components.tls",
        "cells": {"development": "none", "production": "cert-manager"},
        "verdict": "declared",
        "score": 80,
        "reason": "plain HTTP on laptops",
    }
    assert (rows["components.logging"]["verdict"], rows["components.logging"]["score"]) == (
        "same",
        100,
    )
    assert rows["components.storage"]["score"] == 50, "texts differ, no score: declared default"


def test_a_component_of_an_unknown_environment_is_a_positioned_error(tmp_path: Path) -> None:
    spec = minimal(parity={"components": {"tls": {"prodution": "ACM", "score": 90}}})
    root = write_spec(tmp_path, spec)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert (
        "envspec.yaml:24:7: parity.components.tls.prodution: unknown environment 'prodution' "
        "(did you mean 'production'?) (a component has score, reason and a text per environment)"
    ) in result.output.replace(str(root) + "/", "")


@pytest.mark.parametrize(
    ("scores", "expected"),
    [((100, 95, 60, 100, 70), 85.0), ((100, 95), 97.5), ((95, 90, 90, 90), 91.3), ((0, 5), 2.5)],
)
def test_overall_score_is_the_mean_rounded_half_up(
    scores: tuple[int, ...], expected: float
) -> None:
    rows = tuple(Row(f"components.c{i}", (), "declared", s) for i, s in enumerate(scores))
    assert Matrix((), rows).score == expected


SCORE_KEYS = st.fixed_dictionaries({key: st.integers(0, 100) for key in DEFAULTS})


@st.composite
def _services(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Each service: external in production or not, and a version difference that is the same,
    declared with or without a score, or undeclared."""
    count = draw(st.integers(1, 4))
    return [
        {
            "external": draw(st.booleans()),
            "version": draw(st.sampled_from(["same", "declared", "scored", "undeclared"])),
            "score": draw(st.integers(0, 100)),
        }
        for _ in range(count)
    ]


def _expected_service_score(service: dict[str, Any], scores: dict[str, int]) -> int:
    found = [scores["external"]] if service["external"] else []
    found += {
        "same": [],
        "declared": [scores["declared"]],
        "scored": [service["score"]],
        "undeclared": [0],
    }[service["version"]]
    return min(found, default=100)


@settings(max_examples=25, deadline=None)
@given(services=_services(), scores=SCORE_KEYS, compose=st.booleans())
def test_every_row_follows_the_rules(
    services: list[dict[str, Any]], scores: dict[str, int], compose: bool
) -> None:
    spec = _kubernetes_both(
        services={
            f"s{i}": {"image": "example/s", "version": "1.0.0"} for i in range(len(services))
        },
        parity={"scores": scores},
    )
    if compose:
        spec["environments"]["staging"] = {"targets": ["compose"], "local": True}
    patches: dict[str, Any] = {}
    declarations = []
    for i, service in enumerate(services):
        patch: dict[str, Any] = {"external": True} if service["external"] else {}
        if service["version"] != "same":
            patch["version"] = "2.0.0"
        if service["version"] in ("declared", "scored"):
            declaration: dict[str, Any] = {"path": f"services.s{i}.version", "reason": "pilot"}
            if service["version"] == "scored":
                declaration["score"] = service["score"]
            declarations.append(declaration)
        patches[f"s{i}"] = patch
    with tempfile.TemporaryDirectory() as folder:
        root = write_spec(
            Path(folder),
            spec,
            {"production": {"services": patches, "differences": declarations}},
        )
        report = _parity(root)
    rows = {row["component"]: row["score"] for row in report["rows"]}
    wanted = {f"services.s{i}": _expected_service_score(s, scores) for i, s in enumerate(services)}
    wanted["orchestration"] = scores["orchestration"] if compose else 100
    wanted["variables"] = 100
    wanted["secrets"] = 100
    assert rows == wanted
    mean = Decimal(sum(wanted.values())) / len(wanted)
    assert report["score"] == float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def test_validate_warns_below_the_target(tmp_path: Path) -> None:
    spec = minimal(parity={"target": 95})
    root = write_spec(tmp_path / "below", spec)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert (
        "envspec.yaml:22:11: parity.target: warning: the parity score is 90.0%, below the "
        "target 95%; envspec parity shows what each row costs"
    ) in result.output.replace(str(root) + "/", "")
    assert "parity.target" not in run("validate", "--env", "dev", "--spec", str(root)).output
    spec["parity"]["target"] = 90
    met = run("validate", "--spec", str(write_spec(tmp_path / "met", spec)))
    assert met.exit_code == 0 and "parity.target" not in met.output


def test_min_score_is_the_ci_gate(tmp_path: Path) -> None:
    root = write_spec(tmp_path, minimal())
    assert run("parity", "--min-score", "90", "--spec", str(root)).exit_code == 0
    gate = run("parity", "--min-score", "90.1", "--spec", str(root))
    assert gate.exit_code == 1
    assert "envspec: parity score 90.0% is below 90.1%" in gate.output


def test_text_and_markdown_show_each_score_and_the_total(tmp_path: Path) -> None:
    spec = minimal(
        parity={
            "components": {
                "tls": {
                    "development": "none",
                    "production": "a|b",
                    "score": 80,
                    "reason": "HTTP | on laptops\nonly",
                }
            }
        }
    )
    root = write_spec(tmp_path, spec)
    markdown = run("parity", "--format", "markdown", "--spec", str(root)).output
    assert markdown.startswith(
        "### Parity score: 88.0%\n\n| component | development | production | score | verdict |\n"
    )
    assert "| `orchestration` | compose | kubernetes | 60% | expected |" in markdown
    assert "| `components.tls` | none | a\\|b | 80% | declared |" in markdown
    assert "- `components.tls` (80%): HTTP \\| on laptops only" in markdown
    text = run("parity", "--spec", str(root)).output
    assert "components.tls (80%): HTTP | on laptops\\nonly\n" in text, "one line per reason"
    assert "parity score: 88.0% (the mean of the rows' scores)" in text
