"""The Helm v4 engine (helm-python-sdk) for tests/helm_*.rs: no helm binary needed.

    python helm.py render|lint|validate CHART   < {"values_files": [...], "values": {...},
                                                   "name": "...", "namespace": "..."}

prints one JSON object: render -> {"manifests": {template: text}}, lint -> Helm's lint
report, validate -> {"error": message or null} (values.schema.json on the values).
"""

import json
import pathlib
import sys

from helm_python import HelmError
from helm_python.chart import Chart, lint, values_from_yaml


def merge(base, override):
    """Helm's -f a.yaml -f b.yaml --set ...: later maps win, key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def main():
    command, chart_dir = sys.argv[1], sys.argv[2]
    request = json.load(sys.stdin)
    values = {}
    for path in request.get("values_files", []):
        values = merge(values, values_from_yaml(pathlib.Path(path).read_text()))
    values = merge(values, request.get("values") or {})
    if command == "lint":
        print(json.dumps(lint(chart_dir, values, strict=True, namespace=request.get("namespace"))))
        return
    with Chart.load(chart_dir) as chart:
        if command == "validate":
            try:
                chart.validate_schema(values)
                print(json.dumps({"error": None}))
            except HelmError as e:
                print(json.dumps({"error": str(e)}))
            return
        if command == "render":
            manifests = chart.render(
                values, name=request["name"], namespace=request["namespace"],
                is_install=True,
            )
            print(json.dumps({"manifests": manifests}))
            return
    sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
