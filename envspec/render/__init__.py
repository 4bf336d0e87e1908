"""The registry of targets: a name, the renderer that meets the protocol for it."""

from __future__ import annotations

from envspec.render.base import EnvironmentRenderer, ProjectRenderer
from envspec.render.compose import ComposeRenderer
from envspec.render.dotenv import DotenvRenderer
from envspec.render.example import ExampleRenderer
from envspec.render.kubernetes import KubernetesRenderer
from envspec.render.settings import SettingsRenderer

ENVIRONMENT_RENDERERS: dict[str, EnvironmentRenderer] = {
    "dotenv": DotenvRenderer(),
    "compose": ComposeRenderer(),
    "kubernetes": KubernetesRenderer(),
}

PROJECT_RENDERERS: dict[str, ProjectRenderer] = {
    "example": ExampleRenderer(),
    "settings": SettingsRenderer(),
}

TARGETS = (*ENVIRONMENT_RENDERERS, *PROJECT_RENDERERS)
