"""PII redaction with typed placeholders (see ``redactor`` for the rules and README
"Privacy" for what is redacted from which fields, with measured recall)."""

from clone_pipeline.data.pii.redactor import (
    EXAMPLE_TEXT_FIELDS,
    PHONE_REGIONS,
    PLACEHOLDERS,
    PiiPolicy,
    Redactor,
    Span,
    redact_example,
)

__all__ = ["EXAMPLE_TEXT_FIELDS", "PHONE_REGIONS", "PLACEHOLDERS", "PiiPolicy", "Redactor",
           "Span", "redact_example"]
