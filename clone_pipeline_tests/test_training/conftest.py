"""Training data shared by the trainer tests: one persona's answers, rendered as training
records the way the dataset assets write them."""

import pytest

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.data.format_dataset import FormatOptions, format_examples
from clone_pipeline.data.formats import render


@pytest.fixture(scope="module")
def records(local_tiny, persona_doc):
    _, tokenizer, _ = local_tiny
    c = collect(SourceMaterial.from_export(persona_doc))
    f = format_examples(c.examples, "You are Margaret Ellis.", tokenizer,
                        FormatOptions(max_length=512))
    return ([render("conversational", e, f.system_prompt) for e in f.train_examples],
            [render("conversational", e, f.system_prompt) for e in f.eval_examples])


@pytest.fixture(scope="module")
def persona_doc():
    from clone_pipeline_tests.conftest import load_persona

    return load_persona("margaret-ellis")
