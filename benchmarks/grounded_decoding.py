"""Grounded decoding: does the way greedy answers are kept from looping decide whether the
model uses the memories it is given?

For each demo persona with a fact sheet, the default base answers the sheet's questions
grounded in the persona's memories (as the gateway does: retrieval, the memory block in the
system prompt, the abstention when nothing is relevant), greedily, three ways: with the
repetition penalty 1.1 the demo used to serve with (vLLM and transformers both apply it to
the prompt's tokens too, the memories included), with no penalty, and with the frequency
penalty evaluation and the demo now use (the answer's own tokens only). Fact recall and
honest abstention for each, side by side as JSON. No training: base + memories only.

    python benchmarks/grounded_decoding.py [--out result.json]

About 2 minutes per persona and decoding on two quiet CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from harness import emit
from transformers import AutoModelForCausalLM, LogitsProcessorList

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.data.prompts import TemplateStyle, system_prompt
from clone_pipeline.demo import persona_dirs
from clone_pipeline.memory.fidelity import FactSheet, answers_with_memories, is_honest
from clone_pipeline.memory.index import MemoryIndex
from clone_pipeline.memory.passages import passages_from_examples
from clone_pipeline.settings import load_settings
from clone_pipeline.training.base_models import (
    PRODUCT_DEFAULT,
    load_tokenizer,
    resolve_base_model,
)
from clone_pipeline.training.evaluation import GREEDY_FREQUENCY_PENALTY, FrequencyPenalty

MAX_NEW_TOKENS = 48  # as services.fidelity


def decodings(width: int) -> dict[str, dict]:
    return {"repetition_penalty_1.1": {"repetition_penalty": 1.1},
            "no_penalty": {},
            f"frequency_penalty_{GREEDY_FREQUENCY_PENALTY}": {
                "logits_processor": LogitsProcessorList(
                    [FrequencyPenalty(width, GREEDY_FREQUENCY_PENALTY)])}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    tokenizer = load_tokenizer(PRODUCT_DEFAULT, settings.models_dir)
    model = AutoModelForCausalLM.from_pretrained(
        resolve_base_model(PRODUCT_DEFAULT, settings.models_dir), dtype=torch.float32).eval()

    def answer(name: str, conversations: list[list[dict]]) -> list[str]:
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                 for c in conversations]
        tokenizer.padding_side = "left"
        prompt = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        width = prompt["input_ids"].shape[1]
        with torch.inference_mode():
            out = model.generate(**prompt, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, **decodings(width)[name])
        return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]

    report = {"benchmark": "grounded_decoding", "base_model": PRODUCT_DEFAULT, "personas": {}}
    for folder in persona_dirs():
        if not (folder / "facts.json").is_file():
            continue
        doc = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        user = doc["user"]
        system = system_prompt(user["display_name"], user.get("persona"), user.get("birth_year"),
                               TemplateStyle.LEGACY_PRESERVATION)
        index, _ = MemoryIndex.build(passages_from_examples(
            collect(SourceMaterial.from_export(doc)).examples))
        sheet = FactSheet.load(folder / "facts.json")
        questions = [f.question for f in sheet.told] + list(sheet.never_told)
        rows = {}
        for name in decodings(0):
            started = time.perf_counter()
            replies, _ = answers_with_memories(lambda c, name=name: answer(name, c), questions,
                                               system, index)
            told, never = replies[:len(sheet.told)], replies[len(sheet.told):]
            rows[name] = {
                "fact_recall": round(sum(f.recalled_in(a) for f, a in
                                         zip(sheet.told, told, strict=True)) / len(told), 3),
                "honest_abstention": round(sum(map(is_honest, never)) / len(never), 3),
                "seconds": round(time.perf_counter() - started)}
        report["personas"][user["external_id"]] = rows
    emit(report, args.out)


if __name__ == "__main__":
    main()
