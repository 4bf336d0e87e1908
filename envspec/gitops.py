"""What envspec hands to GitOps tools: the Argo CD config management plugin."""

from __future__ import annotations

ENVIRONMENT_VARIABLE = "ARGOCD_ENV_ENVSPEC_ENV"

ARGOCD_PLUGIN = f"""\
# envspec argocd-plugin: the plugin.yaml of an Argo CD config management plugin sidecar.
# An Application names its environment with the plugin env ENVSPEC_ENV (production).
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: envspec
spec:
  discover:
    fileName: ./envspec.yaml
  generate:
    command: [bash, -c]
    args:
      - |
        set -euo pipefail
        : "${{{ENVIRONMENT_VARIABLE}:?set the plugin env ENVSPEC_ENV to the environment to render}}"
        envspec render --spec . --env "${ENVIRONMENT_VARIABLE}" --target kubernetes --stdout |
          awk '1; END {{ if (!NR) {{ print "envspec: no documents" > "/dev/stderr"; exit 1 }} }}'
  preserveFileMode: false
"""
"""An Argo CD ``ConfigManagementPlugin``: it claims every application folder with an
``envspec.yaml`` and generates the documents of the environment named by the application's
plugin env ``ENVSPEC_ENV``. The script fails whenever envspec does (``pipefail``), and when no
document came out, so Argo CD never applies an empty set of documents and prunes with it."""
