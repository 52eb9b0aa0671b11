"""A person's fact sheet (held-out questions about her life, see memory.fidelity), kept under
``<data root>/facts/<user>``, and the fidelity of a model version measured on it."""

from __future__ import annotations

from pathlib import Path

from clone_pipeline.files import user_folder, write_json
from clone_pipeline.memory.fidelity import FORMAT, FactSheet, FidelityReport, measure
from clone_pipeline.services.memory import load_memory
from clone_pipeline.settings import Settings

FACT_SHEET = "facts.json"
MAX_NEW_TOKENS = 48  # a fact fits in a sentence; more only costs time on a CPU


def fact_sheet_path(settings: Settings, external_id: str) -> Path:
    return user_folder(settings, "facts", external_id) / FACT_SHEET


def store_fact_sheet(settings: Settings, external_id: str, source: Path) -> FactSheet:
    """Check *source* and keep it as the person's fact sheet (replacing theirs, if any)."""
    sheet = FactSheet.load(source)
    write_json(fact_sheet_path(settings, external_id), {
        "format": FORMAT, "version": 1, "user": external_id,
        "told": [{"question": f.question, "expect": list(f.expect)} for f in sheet.told],
        "never_told": list(sheet.never_told)})
    return sheet


def load_fact_sheet(settings: Settings, external_id: str) -> FactSheet | None:
    path = fact_sheet_path(settings, external_id)
    return FactSheet.load(path) if path.is_file() else None


def measure_version(settings: Settings, external_id: str, sheet: FactSheet, base_model: str,
                    adapter_path: str, system_prompt: str) -> FidelityReport:
    """The version's fidelity on *sheet*: base and adapter, each alone and with the
    person's memory index (when it has been built), answering greedily."""
    # torch and transformers load here, not with the module: every Dagster step process
    # imports the code location, and most steps never evaluate.
    import torch

    from clone_pipeline.training.evaluation import generate_batch, load_adapter

    model, tokenizer = load_adapter(base_model, adapter_path, settings.models_dir)

    def adapter(conversations):
        return generate_batch(model, tokenizer, conversations, MAX_NEW_TOKENS, greedy=True)

    def base(conversations):
        with model.disable_adapter():
            return adapter(conversations)

    with torch.inference_mode():
        return measure(sheet, system_prompt, load_memory(settings, external_id),
                       {"base": base, "adapter": adapter})
