"""Check formatted dataset files: every record against its format's schema, and every
conversation through the tokenizer's chat template (lossless round trip, within budget)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator

from clone_pipeline.data.formats import MESSAGE_FORMATS, SCHEMAS, record_messages
from clone_pipeline.data.store import read_jsonl

MAX_REPORTED = 20


@dataclass
class ValidationReport:
    records_checked: int = 0
    round_trips: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)


def validate_files(files: dict[str, list[Path]], tokenizer, max_length: int
                   ) -> ValidationReport:
    """*files* maps a format name to its JSONL files (train and eval)."""
    report = ValidationReport()
    for fmt, paths in files.items():
        validator = Draft202012Validator(SCHEMAS[fmt])
        for path in paths:
            for line_no, record in enumerate(read_jsonl(path), start=1):
                report.records_checked += 1
                where = f"{path.name}:{line_no}"
                for error in validator.iter_errors(record):
                    report.add(f"{where}: {'/'.join(map(str, error.path)) or 'record'} "
                               f"fails {error.validator}")
                if fmt in MESSAGE_FORMATS:
                    _round_trip(fmt, record, tokenizer, max_length, where, report)
    return report


def _round_trip(fmt, record, tokenizer, max_length, where, report) -> None:
    msgs = record_messages(fmt, record)
    roles = [m["role"] for m in msgs]
    if roles[-2:] != ["user", "assistant"] or not msgs:
        report.add(f"{where}: conversation must end with a user then an assistant turn")
        return
    rendered = tokenizer.apply_chat_template(msgs, tokenize=False)
    ids = tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
    if tokenizer.decode(ids) != rendered:
        report.add(f"{where}: chat template rendering does not survive tokenization")
        return
    position = 0
    for m in msgs:  # every turn's text must appear, in order, in what the model sees
        found = rendered.find(m["content"], position)
        if found < 0:
            report.add(f"{where}: the {m['role']} turn is lost by the chat template")
            return
        position = found + len(m["content"])
    if len(ids) > max_length:
        report.add(f"{where}: {len(ids)} tokens through the chat template; "
                   f"max_length is {max_length}")
        return
    report.round_trips += 1
