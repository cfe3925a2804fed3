"""Print, as JSON, what CloudFormation receives for a SAM template, and what its resources' handlers need.

Runs in the SAM tool environment (.tools/sam: samtranslator and cfn-lint), which the project's .venv does not
hold; tests/unit/test_translated_template.py calls it. The code and layer folders are replaced by S3 objects, as
`sam package` does, and no managed policy is looked up (the template names none).

    .tools/sam/bin/python tools/sam_translate.py template.yaml [rollout/github-oidc.yaml ...]
    -> {"templates": {path: translated}, "handlers": {type: {"create": [...], "update": [...], "delete": [...]}}}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import cfnlint.data.schemas
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PACKAGED = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
SCHEMAS = Path(cfnlint.data.schemas.__file__).parent


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def translated(path: str) -> dict[str, Any]:
    template = yaml_parse(Path(path).read_text())
    if "Transform" not in template:
        return dict(template)
    for name, resource in template["Resources"].items():
        if resource["Type"] in PACKAGED:
            resource["Properties"][PACKAGED[resource["Type"]]] = f"s3://package-bucket/{name}.zip"
    return dict(transform(template, dict(PSEUDO), _NoManagedPolicies()))


def handlers(types: set[str], region: str = "us-east-1") -> dict[str, dict[str, list[str]]]:
    """Each resource type's handler permissions, from the CloudFormation registry schemas cfn-lint ships."""
    index = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    found = {}
    for kind in sorted(types):
        if kind not in index:
            continue  # custom resources
        schema = json.loads((SCHEMAS / "resources" / f"{index[kind]}.json").read_text())
        found[kind] = {
            action: schema.get("handlers", {}).get(action, {}).get("permissions", [])
            for action in ("create", "update", "delete")
        }
    return found


def main(paths: list[str]) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", PSEUDO["AWS::Region"])
    templates = {path: translated(path) for path in paths}
    types = {r["Type"] for t in templates.values() for r in t["Resources"].values()}
    json.dump({"templates": templates, "handlers": handlers(types)}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
