"""Synthetic specs of N services x M variables x E environments, shaped like real ones.

Each service receives M variables of mixed types; a fifth of them are secrets (literals in the
local environment, vault references elsewhere); every environment overrides some values and the
replicas of every service; the last environment declares a difference for every tenth service's
version.

``python -m benchmarks.synthetic ROOT SERVICES [VARIABLES] [ENVIRONMENTS]`` writes one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def spec(services: int, variables: int, environments: int) -> tuple[dict[str, Any], dict[str, Any]]:
    names = [
        "development",
        *[f"stage-{index}" for index in range(1, environments - 1)],
        "production",
    ]
    names = names[:environments]
    base: dict[str, Any] = {
        "version": 1,
        "project": "synthetic",
        "environments": {
            name: (
                {"targets": ["dotenv", "compose"], "local": True}
                if index == 0
                else {
                    "targets": ["kubernetes"],
                    "secrets": {"mode": "external-secrets", "store": "vault"},
                }
            )
            for index, name in enumerate(names)
        },
        "services": {},
        "variables": {},
    }
    for index in range(services):
        own = [f"S{index}_V{number}" for number in range(variables)]
        base["services"][f"svc-{index}"] = {
            "image": f"registry.example.com/team/svc-{index}",
            "version": f"1.{index % 7}.{index % 13}",
            "ports": [8000 + index % 1000],
            "depends_on": [f"svc-{index - 1}"] if index else [],
            "healthcheck": {"command": ["/bin/healthcheck", "--port", str(8000 + index % 1000)]},
            "variables": own,
        }
        for number, name in enumerate(own):
            kind = ("str", "int", "bool", "url", "str")[number % 5]
            default = {
                "str": f"value {number} $x q",
                "int": str(number),
                "bool": "false",
                "url": f"https://svc-{index}.example.com/{number}",
            }[kind]
            entry: dict[str, Any] = {
                "type": kind,
                "default": default,
                "description": f"setting {number}",
            }
            if number % 5 == 4:
                entry = {"secret": True, "description": "a credential"}
            base["variables"][name] = entry
    overlays: dict[str, Any] = {}
    for position, name in enumerate(names):
        values: dict[str, Any] = {}
        for index in range(services):
            for number in range(variables):
                variable = f"S{index}_V{number}"
                if number % 5 == 4:
                    values[variable] = (
                        f"local-secret-{index}-{number}"
                        if position == 0
                        else {"secret": f"vault://synthetic/{name}/svc-{index}#v{number}"}
                    )
                elif number % 10 == 0:
                    values[variable] = f"{name} override {index}"
        service_patches: dict[str, dict[str, Any]] = {
            f"svc-{index}": {"replicas": {"min": 2, "max": 6} if position else 1}
            for index in range(services)
        }
        differences = []
        if position == len(names) - 1:
            for index in range(0, services, 10):
                service_patches[f"svc-{index}"]["version"] = f"2.{index % 7}.0"
                differences.append(
                    {"path": f"services.svc-{index}.version", "reason": "canary rollout"}
                )
        overlays[name] = {
            "variables": values,
            "services": service_patches,
            "differences": differences,
        }
    return base, overlays


def write(root: Path, services: int, variables: int, environments: int) -> Path:
    base, overlays = spec(services, variables, environments)
    root.mkdir(parents=True, exist_ok=True)
    (root / "envspec.yaml").write_text(_dump(base), encoding="utf-8")
    (root / "environments").mkdir(exist_ok=True)
    for name, overlay in overlays.items():
        (root / "environments" / f"{name}.yaml").write_text(_dump(overlay), encoding="utf-8")
    return root


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1_000_000)


try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]


if __name__ == "__main__":
    folder, *sizes = sys.argv[1:]
    counts = [int(size) for size in sizes] + [50, 3][len(sizes) - 1 :]
    write(Path(folder), *counts[:3])
