"""Persona A's adapter writes more like A than like B, on the offline base local-tiny.

Two adapters are trained as the demo trains (the cpu_demo preset, with the learning rate,
epochs and batch local-tiny was tuned with: 3e-3, 3 epochs of 4 sequences, in fp32; the
pretrained default base's own A-vs-B figures come from the demo, README "Persona A vs B") on
two demo personas who answered the same questions: Margaret Ellis (long, flowing sentences)
and Walter Okafor (short, clipped ones). Records carry no system prompt, so nothing but the
adapter tells the model whose answers to write. Every comparison is symmetric: on each
person's material, that person's adapter is compared with the other person's adapter.

- Held-out loss: perplexity of a person's real answers to the held-out questions (answer
  tokens only, evaluation.answer_perplexity) is lower under their own adapter than under the
  other's. Both ways.
- Generated answers (4 samples for each held-out question, evaluation.generate):
  - sentence length, the first of evaluation.style_features: each adapter's answers are
    closer to its own person's real held-out answers than the other adapter's answers are.
    Both ways.
  - persona similarity (all-MiniLM-L6-v2, evaluation.embed): how much closer an answer is to
    A's real held-out answers than to B's (cosine to A's centroid minus cosine to B's) is
    higher for A's adapter than for B's, by more than twice its standard error. Only this
    difference is asserted: A's adapter is clearly nearer A than B's adapter is, but B's
    adapter is not clearly nearer B than A's is (local-tiny writes broken sentences, and
    Margaret's answers are the nearer to generic prose). The full stylometric distance is not
    asserted either: the function-word rates of those broken sentences swamp it. Both are
    printed.

Measured figures are in the README (Training, "Persona A vs B").
"""

from dataclasses import replace

import numpy as np
import pytest

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.data.format_dataset import FormatOptions, format_examples
from clone_pipeline.data.formats import record_messages, render
from clone_pipeline.defs.training_config import TrainingRunConfig
from clone_pipeline.training.config import PRESETS
from clone_pipeline.training.evaluation import (
    answer_perplexity,
    embed,
    generate,
    style_distance,
    style_features,
)
from clone_pipeline.training.trainer import Trainer
from clone_pipeline_tests.conftest import load_persona

A, B = "margaret-ellis", "walter-okafor"
SAMPLES = 4  # generated answers per held-out question and adapter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(local_tiny, models_dir, tmp_path_factory):
    """Per person: held-out records, real held-out answers and their own trained adapter."""
    _, tokenizer, _ = local_tiny
    config = replace(TrainingRunConfig(**PRESETS["cpu_demo"]).train_config(),
                     base_model="local-tiny", learning_rate=3e-3, epochs=3, batch_size=4,
                     save_steps=1000, precision="fp32")
    out = tmp_path_factory.mktemp("adapters")
    people = {}
    for name in (A, B):
        formatted = format_examples(
            collect(SourceMaterial.from_export(load_persona(name))).examples, None, tokenizer,
            FormatOptions(max_length=config.context_length, include_system_prompts=False))
        train, held_out = ([render("conversational", e, None) for e in examples]
                           for examples in (formatted.train_examples, formatted.eval_examples))
        trainer = Trainer(config, train, held_out, out / name, models_dir, log=lambda m: None)
        trainer.run()
        people[name] = {"held_out": held_out, "model": trainer.model.eval(),
                        "real": [record_messages("conversational", r)[-1]["content"]
                                 for r in held_out]}
    return people, tokenizer, config.context_length


@pytest.fixture(scope="module")
def generated(trained):
    """Each adapter's answers to every held-out question of either person."""
    people, tokenizer, _ = trained
    prompts = []
    for person in people.values():
        for record in person["held_out"]:
            prompt = record_messages("conversational", record)[:-1]
            if prompt not in prompts:
                prompts.append(prompt)
    return {name: [generate(person["model"], tokenizer, prompt, seed=100 * sample + i) or "."
                   for i, prompt in enumerate(prompts) for sample in range(SAMPLES)]
            for name, person in people.items()}


def test_held_out_answers_are_likelier_under_their_own_persons_adapter(trained):
    people, tokenizer, context_length = trained
    perplexity = {(adapter, answers): answer_perplexity(
        people[adapter]["model"], tokenizer, "conversational", people[answers]["held_out"],
        context_length) for adapter in (A, B) for answers in (A, B)}
    print({f"{adapter} adapter on {answers}": round(value, 1)
           for (adapter, answers), value in perplexity.items()})
    assert perplexity[A, A] < perplexity[B, A]
    assert perplexity[B, B] < perplexity[A, B]


def test_generated_sentence_length_follows_the_adapters_person(trained, generated):
    people, _, _ = trained
    # words per sentence / 20, as evaluation.style_features scales it
    real = {name: style_features(person["real"])[0] for name, person in people.items()}
    made = {name: style_features(answers)[0] for name, answers in generated.items()}
    print("words per sentence, real:", {n: round(20 * v, 1) for n, v in real.items()},
          "generated:", {n: round(20 * v, 1) for n, v in made.items()},
          "style distance (own, other):",
          {n: (round(style_distance(generated[n], people[n]["real"]), 3),
               round(style_distance(generated[n], people[B if n == A else A]["real"]), 3))
           for n in (A, B)})
    assert abs(made[A] - real[A]) < abs(made[B] - real[A])
    assert abs(made[B] - real[B]) < abs(made[A] - real[B])


def test_generated_answers_lean_towards_their_own_person(trained, generated):
    people, _, _ = trained
    centroid = {name: embed(person["real"]).mean(0) for name, person in people.items()}
    similarity = {(adapter, person): embed(generated[adapter]) @ centroid[person]
                  for adapter in (A, B) for person in (A, B)}
    lean = {adapter: similarity[adapter, A] - similarity[adapter, B] for adapter in (A, B)}
    # The difference of the means, and that it is not noise: over twice its standard error.
    difference = lean[A].mean() - lean[B].mean()
    standard_error = np.sqrt(lean[A].var(ddof=1) / len(lean[A]) +
                             lean[B].var(ddof=1) / len(lean[B]))
    print("persona similarity:", {f"{a} adapter to {p}": round(float(s.mean()), 4)
                                  for (a, p), s in similarity.items()},
          "lean towards A:", {a: round(float(v.mean()), 4) for a, v in lean.items()},
          f"difference {difference:.4f} (standard error {standard_error:.4f})")
    assert difference > 2 * standard_error
