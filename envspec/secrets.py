"""Secret references (``<backend>://<path>[#<key>]``) and the masking of secret values.

envspec never resolves a reference: it carries it to the artifact that will (an ExternalSecret, a
Secret skeleton's annotation, a compose ``${VAR:?}``), so a reference is safe to print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

BACKENDS: Final = ("vault", "aws-sm", "gcp-sm", "azure-kv", "k8s", "env")
STORE_BACKENDS: Final = frozenset({"vault", "aws-sm", "gcp-sm", "azure-kv"})
"""Backends an external-secrets store reads (``k8s`` and ``env`` are read by others)."""
MASK: Final = "<literal secret>"
PLACEHOLDER_PATH: Final = "TODO/"
"""A reference whose path starts so is a placeholder still to fill in (``init`` writes them)."""

_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_K8S_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_REFERENCE = re.compile(r"(?P<backend>[a-z][a-z0-9-]*)://(?P<path>[^#]*)(?:#(?P<key>.*))?", re.S)
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_STORE_REFERENCE = re.compile(
    "(" + "|".join(sorted(STORE_BACKENDS)) + r")://([\x21\x22\x24-\x7e]+)(?:#([\x21-\x7e]+))?"
)
"""The common shape, which needs no other check: a store's backend (only ``k8s`` and ``env`` have
rules of their own), a printable path without '#', and optionally a printable key."""


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: a backend, a path in it, and optionally a key inside that secret."""

    backend: str
    path: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.backend}://{self.path}" + (f"#{self.key}" if self.key is not None else "")

    @property
    def is_placeholder(self) -> bool:
        return self.path.startswith(PLACEHOLDER_PATH)

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse a reference; a ``ValueError`` names what is wrong (it is safe to show)."""
        common = _STORE_REFERENCE.fullmatch(text)
        if common is not None:
            backend, path, key = common.groups()
            return cls(backend, path, key)
        match = _REFERENCE.fullmatch(text)
        if match is None:
            raise ValueError("a secret reference looks like '<backend>://<path>[#<key>]'")
        backend, path, key = match["backend"], match["path"], match["key"]
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown secret backend '{backend}'; expected one of: {', '.join(BACKENDS)}"
            )
        if not path or not _PRINTABLE.fullmatch(path):
            raise ValueError("the path of a secret reference must be non-empty printable ASCII")
        if key is not None and not _PRINTABLE.fullmatch(key):
            raise ValueError("the key after '#' must be non-empty printable ASCII")
        if backend == "k8s":
            if not _K8S_NAME.fullmatch(path):
                raise ValueError("k8s://<secret>#<key>: the Secret name must be a DNS-1123 name")
            if key is None or not _K8S_KEY.fullmatch(key):
                raise ValueError("k8s://<secret>#<key>: a key of the existing Secret is required")
        if backend == "env":
            if not _VARIABLE.fullmatch(path):
                raise ValueError("env://<NAME>: NAME must match [A-Z_][A-Z0-9_]*")
            if key is not None:
                raise ValueError("env://<NAME> takes no '#key'")
        return cls(backend, path, key)
