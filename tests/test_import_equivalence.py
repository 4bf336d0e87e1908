"""Import faithfulness: for every compose setup of the corpus (tests/cases/compose/<case>/),
``config`` of Compose v2 and v1 reads the original and envspec's rendered development file alike.

Only what is legitimately different is normalised: the project name, top-level ``x-`` templates
(already expanded into the services), the ``ENVSPEC_ENVIRONMENT`` variable envspec adds, service
names made DNS labels (and the host names in values that name them), what reads as compose's
defaults when omitted (a healthcheck's fields, ``stop_grace_period``), the image name the spec
gives a service that is only built, and an empty ``ports`` list (Compose v1 prints it, v2 does
not). Everything else must be equal.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from envspec.models import dns_label
from tests.helpers import run
from tests.importing import CORPUS, import_case, init_from_compose
from tests.readers import compose_config_or_error, compose_v1, compose_v2

_HEALTHCHECK_DEFAULTS = {"interval": 30.0, "timeout": 30.0, "retries": 3, "start_period": 0.0}


def _profiles(compose: Path) -> str:
    data = yaml.safe_load(compose.read_text())
    names = {
        p for service in data["services"].values() for p in (service or {}).get("profiles", [])
    }
    return ",".join(sorted(names))


@pytest.mark.parametrize("case", CORPUS)
@pytest.mark.parametrize("binary", ["v2", "v1"])
def test_rendered_development_is_equivalent(tmp_path: Path, case: str, binary: str) -> None:
    imported = import_case(case, tmp_path)
    original, rendered = imported.original, imported.rendered
    reader = compose_v2() if binary == "v2" else compose_v1()
    renames = {name: dns_label(name) for name in yaml.safe_load(original.read_text())["services"]}
    if binary == "v1" and re.search(r"(?m)^name:", original.read_text()):
        # Compose v1 does not know the project's `name:`, which is normalised away anyway.
        without = re.sub(r"(?m)^name:.*\n", "", original.read_text())
        original = original.with_name("compose-v1.yml")
        original.write_text(without)
    for profiles in sorted({"", _profiles(original)}):
        env = {"COMPOSE_PROFILES": profiles} if profiles else {}
        before, before_error = compose_config_or_error(reader, original, env)
        after, after_error = compose_config_or_error(reader, rendered, env)
        if before is None:
            # This Compose refuses the original (a key it does not know): it refuses the import too.
            assert after is None, (
                f"{binary} refuses the original but reads the import:\n{before_error}"
            )
            continue
        assert after is not None, after_error
        expected, found = _normal(before, renames), _normal(after, {})
        for name, service in expected["services"].items():
            if "build" in service and "image" not in service:
                found["services"][name].pop("image", None)  # the spec names every image
        assert found == expected, _difference(expected, found)


def _difference(expected: dict[str, Any], found: dict[str, Any]) -> str:
    lines = difflib.unified_diff(
        yaml.safe_dump(expected).splitlines(),
        yaml.safe_dump(found).splitlines(),
        "original",
        "rendered",
        lineterm="",
    )
    return "\n".join(lines)


def _normal(data: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    result = {
        key: value for key, value in data.items() if key != "name" and not key.startswith("x-")
    }
    services = {}
    for name, original in data.get("services", {}).items():
        service = dict(original)
        environment = dict(service.get("environment") or {})
        environment.pop("ENVSPEC_ENVIRONMENT", None)
        for old, new in renames.items():
            if old != new:
                environment = {
                    key: None
                    if value is None
                    else re.sub(rf"\b{re.escape(old)}\b", new, str(value))
                    for key, value in environment.items()
                }
        if environment:
            service["environment"] = environment
        else:
            service.pop("environment", None)
        if isinstance(service.get("links"), list):
            service["links"] = [
                ":".join(
                    [renames.get(link.split(":")[0], link.split(":")[0]), *link.split(":")[1:]]
                )
                for link in service["links"]
            ]
        if isinstance(service.get("depends_on"), dict):
            service["depends_on"] = {renames.get(k, k): v for k, v in service["depends_on"].items()}
        service["stop_grace_period"] = _seconds(service.get("stop_grace_period", "10s"))
        if service.get("ports") == []:
            del service["ports"]  # Compose v1 prints the empty list the spec renders
        if "healthcheck" in service:
            service["healthcheck"] = _healthcheck(service["healthcheck"])
        services[renames.get(name, name)] = service
    result["services"] = services
    return result


def _healthcheck(check: dict[str, Any]) -> dict[str, Any]:
    if check.get("disable") or check.get("test") in (["NONE"], "NONE"):
        return {"disable": True}
    result = {**_HEALTHCHECK_DEFAULTS, **check}
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in result:
            result[key] = _seconds(result[key])
    return result


def _seconds(duration: Any) -> float:
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([0-9.]+)(h|ms|m|s|us|ns)", str(duration))
    return round(sum(float(amount) * units[unit] for amount, unit in parts), 6)


@pytest.mark.parametrize("case", CORPUS)
def test_import_of_a_rendered_file_gives_an_equivalent_spec(tmp_path: Path, case: str) -> None:
    """Round trip: importing the compose file envspec rendered renders the same file again."""
    rendered = import_case(case, tmp_path / "first").rendered
    again = tmp_path / "again"
    result = init_from_compose(again, rendered)
    assert result.exit_code == 0, result.output
    assert run("render", "--env", "development", "--spec", str(again)).exit_code == 0
    second = again / "build" / "development" / "docker-compose.yaml"
    first_config, error = compose_config_or_error(compose_v2(), rendered)
    second_config, second_error = compose_config_or_error(compose_v2(), second)
    assert first_config is not None and second_config is not None, error + second_error
    assert _normal(second_config, {}) == _normal(first_config, {}), _difference(
        _normal(first_config, {}), _normal(second_config, {})
    )
    spec = yaml.safe_load((tmp_path / "first" / "spec" / "envspec.yaml").read_text())
    round_trip = yaml.safe_load((again / "envspec.yaml").read_text())
    for name, service in spec["services"].items():
        kept = round_trip["services"][name]
        assert (kept["image"], kept.get("version")) == (service["image"], service.get("version"))
        assert kept.get("depends_on") == service.get("depends_on")
        in_development = {v for v in service["variables"] if "required" not in spec["variables"][v]}
        assert set(kept["variables"]) == in_development
