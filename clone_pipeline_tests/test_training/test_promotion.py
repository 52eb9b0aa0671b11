"""A new model version becomes the user's current one only when it beats the current one on
the same held-out questions; a person can promote any evaluated version by hand (rollback).

Versions are recorded with the figures real evaluations gave (the README's demo: v1's
held-out perplexity 200.3, the default-config run's 244.6); the decision is the real one."""

import pytest
from click.testing import CliRunner

from clone_pipeline.cli import main
from clone_pipeline.db import training, users
from clone_pipeline.db.session import session_scope
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.model_versions import (
    UnknownVersionError,
    decide_promotion,
    list_versions,
    promote,
)

USER = "walter-okafor"
HELDOUT = "a1b2c3d4e5f6a7b8"


@pytest.fixture
def walter(settings):
    import_export(PERSONAS_DIR / USER, settings)
    return settings


def _evaluated(settings, perplexity: float, base: float = 260.4, heldout: str = HELDOUT,
               base_model: str = "local-tiny"):
    """A trained and evaluated version with these held-out figures; returns its id."""
    with session_scope(settings.database_url) as s:
        run = training.add_run(s, user_id=users.user_id_of(s, USER), base_model=base_model)
        version = training.add_model_version(s, run.id, None, "/adapters/x", "0" * 64, {})
        training.store_evaluation(s, version.id, {
            "adapter_perplexity": perplexity, "base_perplexity": base,
            "persona_similarity": 0.15, "control_similarity": 0.146, "heldout": heldout,
            "heldout_file": "datasets/x/eval.jsonl", "format": "conversational",
            "context_length": 512})
        return version.id


def _current(settings) -> int | None:
    return next((v.version for v in list_versions(settings, USER) if v.current), None)


def test_a_worse_version_is_kept_out_and_a_better_one_promoted(walter):
    first = decide_promotion(walter, _evaluated(walter, 200.3))
    assert first.promote and "first version that beats its base" in first.note
    worse = decide_promotion(walter, _evaluated(walter, 244.6))
    assert not worse.promote
    assert worse.note == ("kept v1: v2's held-out perplexity 244.6 does not beat v1's 200.3 "
                          "(lower is better; same held-out questions)")
    assert _current(walter) == 1
    better = decide_promotion(walter, _evaluated(walter, 180.2))
    assert better.promote and "180.2 beats current v1's 200.3 (lower is better" in better.note
    assert _current(walter) == 3
    notes = {v.version: v.note for v in list_versions(walter, USER)}
    assert notes[2].startswith("kept v1") and notes[3].startswith("auto: promoted v3")


def test_versions_that_cannot_be_compared_are_not_promoted(walter):
    decide_promotion(walter, _evaluated(walter, 200.3))
    no_better_than_base = decide_promotion(walter, _evaluated(walter, 150.0, base=140.0))
    assert not no_better_than_base.promote and "does not beat its base" in \
        no_better_than_base.note
    other_base = decide_promotion(walter, _evaluated(walter, 20.0, base_model="gpt2"))
    assert not other_base.promote and "not comparable" in other_base.note
    assert _current(walter) == 1


def test_first_version_that_does_not_beat_its_base_is_not_current(walter):
    verdict = decide_promotion(walter, _evaluated(walter, 270.0))
    assert not verdict.promote and verdict.note.startswith("no version promoted")
    assert _current(walter) is None


def test_promote_rolls_back_and_models_lists_the_versions(walter, monkeypatch):
    decide_promotion(walter, _evaluated(walter, 200.3))
    decide_promotion(walter, _evaluated(walter, 180.2))
    assert _current(walter) == 2
    assert promote(walter, USER, 1) == "manual: promoted by hand (current was v2)"
    assert _current(walter) == 1
    with pytest.raises(UnknownVersionError, match=r"no model version v9 \(versions: v1, v2;"):
        promote(walter, USER, 9)

    for name, value in (("CLONE_HOME", walter.home), ("CLONE_DATABASE_URL",
                                                       walter.database_url),
                        ("CLONE_MODELS_DIR", walter.models_dir)):
        monkeypatch.setenv(name, str(value))
    cli = CliRunner()
    back = cli.invoke(main, ["promote", USER, "v2"])
    assert back.exit_code == 0 and "v2 is current (manual" in back.output
    listed = cli.invoke(main, ["models", USER])
    assert listed.exit_code == 0, listed.output
    cells = [line.split("│")[1:] for line in listed.output.splitlines() if "│" in line]
    rows = {c[0].strip(): c for c in cells if c[0].strip()}
    assert rows["v2"][1].strip() == "current" and rows["v1"][1].strip() == ""
    assert rows["v1"][4].strip() == "200.3 (260.4)"
    assert rows["v2"][4].strip() == "180.2 (260.4)"
    refused = cli.invoke(main, ["promote", USER, "7"])
    assert refused.exit_code == 1 and "no model version v7" in refused.output
