"""JSON Schemas of every file a user writes, generated from the pydantic models.

An editor's YAML language server uses them to validate and complete rule, fact and test files
(each bundled file names its schema in a `# yaml-language-server: $schema=...` modeline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .model import (
    BenchmarkFile,
    CaseFile,
    Catalog,
    CommodityFile,
    FactBaseFile,
    Pack,
    Policy,
    ScenarioFile,
    SectorFile,
    SourceList,
    StockFile,
)

SCHEMAS: dict[str, type[BaseModel]] = {
    "pack": Pack,
    "policy": Policy,
    "cases": CaseFile,
    "catalog": Catalog,
    "sources": SourceList,
    "stock": StockFile,
    "sector": SectorFile,
    "commodities": CommodityFile,
    "base": FactBaseFile,
    "benchmark": BenchmarkFile,
    "scenarios": ScenarioFile,
}


def schema_of(name: str) -> dict[str, Any]:
    model = SCHEMAS[name]
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"verdict/{name}.schema.json"
    return schema


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema_of(name), indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                        encoding="utf-8")
        written.append(path)
    return written


def kind_of(path: Path, root: Path) -> str | None:
    """Which schema a bundled file follows, from where it sits."""
    rel = path.relative_to(root).parts
    if rel[0] == "rules":
        return "policy" if rel[-1] == "policy.yaml" else "cases" if "tests" in rel else "pack"
    if rel[0] == "scenarios":
        return "scenarios"
    if rel[0] == "facts":
        if rel[-1] in ("catalog.yaml", "sources.yaml", "commodities.yaml", "base.yaml"):
            return rel[-1].removesuffix(".yaml")
        if "benchmarks" in rel:
            return "benchmark"
        return "stock" if "stocks" in rel else "sector" if "sectors" in rel else None
    return None
