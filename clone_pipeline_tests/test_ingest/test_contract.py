"""The import contract is the project's own: docs/user-export.md, and the JSON Schema the
importer validates with, published as docs/user-export.schema.json and `clone-pipeline
schema`, always the same."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from jsonschema import Draft202012Validator

from clone_pipeline.cli import main
from clone_pipeline.ingest.schema import EXPORT_SCHEMA, schema_json

ROOT = Path(__file__).resolve().parents[2]
PERSONAS = ROOT / "clone_pipeline" / "demo" / "personas"


def test_the_published_schema_file_is_the_one_the_importer_uses():
    published = (ROOT / "docs" / "user-export.schema.json").read_text(encoding="utf-8")
    assert published == schema_json(), (
        "docs/user-export.schema.json is stale: run `clone-pipeline schema > "
        "docs/user-export.schema.json`")
    assert {k: v for k, v in json.loads(published).items() if k != "title"} == EXPORT_SCHEMA


def test_the_schema_command_prints_it():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == schema_json()


def test_any_json_schema_validator_accepts_the_demo_exports_with_the_published_schema():
    validator = Draft202012Validator(json.loads(schema_json()))
    for export in sorted(PERSONAS.glob("*/export.json")):
        assert not list(validator.iter_errors(json.loads(export.read_text()))), export


def test_the_contract_document_is_in_the_repository_and_names_the_schema():
    contract = (ROOT / "docs" / "user-export.md").read_text(encoding="utf-8")
    assert "clone-pipeline/user-export" in contract
    assert "user-export.schema.json" in contract
