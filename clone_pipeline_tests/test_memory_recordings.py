"""Memories she recorded herself telling: a passage names the recording and the seconds that
say it, a reply's sources carry them, and indexes saved before these fields still load."""

from __future__ import annotations

import re

import numpy as np

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.db import users, voice
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import VoiceIntegrationStatus
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.files import relative_to_root, user_folder, write_json
from clone_pipeline.memory.grounding import Grounding
from clone_pipeline.memory.index import Hit
from clone_pipeline.memory.passages import Passage, Telling, WordTime, link_recordings
from clone_pipeline.services.datasets import collect_user_data
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.memory import build_memory, load_memory

ANSWER = Passage("responses:r1#0", "responses", "r1", "What was your first job?",
                 "I started at Hartley's bakery on the corner at fifteen, up at four.")
STORY = [Passage("life_stories:s1#0", "life_stories", "s1", "The orchard summer",
                 "We picked apples until our hands were sticky. The ladders creaked.", 0, 2),
         Passage("life_stories:s1#1", "life_stories", "s1", "The orchard summer",
                 "At dusk Dad lit the brazier and we roasted the windfalls.", 1, 2)]
STORY_TOLD = ("We picked apples until our hands were sticky. At dusk Dad lit the brazier "
              "and we roasted the windfalls.")


def _timed(transcript: str, seconds_per_word: float = 0.5) -> tuple[WordTime, ...]:
    """Word timings as voice_alignment stores them: one word every *seconds_per_word*."""
    return tuple(WordTime(m.start(), m.end(), i * seconds_per_word,
                          i * seconds_per_word + 0.4)
                 for i, m in enumerate(re.finditer(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?",
                                                   transcript)))


def test_a_passage_saved_before_recordings_existed_loads_without_one():
    old = {k: v for k, v in ANSWER.as_dict().items()
           if k not in ("recording_id", "start_s", "end_s")}
    assert Passage.from_dict(old) == ANSWER and ANSWER.recording_id is None
    told = Passage(**{**old, "recording_id": "v-005", "start_s": 0.0, "end_s": 4.2})
    assert Passage.from_dict(told.as_dict()) == told
    assert told.digest == ANSWER.digest  # a new recording re-embeds nothing


def test_an_answer_she_recorded_names_the_whole_recording():
    told = Telling("v-005", "responses", "r1", "I started at Hartley's bakery on the "
                   "corner at fifteen.", 4.2)
    [linked] = link_recordings([ANSWER], [told])
    assert (linked.recording_id, linked.start_s, linked.end_s) == ("v-005", 0.0, 4.2)
    # the same when her words are timed: all of it tells the answer
    [timed] = link_recordings([ANSWER], [Telling(**{**told.__dict__,
                                                    "words": _timed(told.transcript)})])
    assert (timed.start_s, timed.end_s) == (0.0, 4.2)


def test_a_story_told_across_passages_names_the_seconds_of_each_part():
    told = Telling("v-006", "life_stories", "s1", STORY_TOLD, 9.0, _timed(STORY_TOLD))
    first, second = link_recordings(STORY, [told])
    # words 0-7 ("We ... sticky") are part 0, words 8-17 part 1; 0.15 s kept either side
    assert (first.recording_id, first.start_s, first.end_s) == ("v-006", 0.0, 4.05)
    assert (second.recording_id, second.start_s, second.end_s) == ("v-006", 3.85, 9.0)


def test_timings_of_another_version_of_the_transcript_are_not_trusted():
    stale = _timed("We picked pears until our hands were sticky and sore.")
    told = Telling("v-006", "life_stories", "s1", STORY_TOLD, 9.0, stale)
    assert [(p.start_s, p.end_s) for p in link_recordings(STORY, [told])] == [(0.0, 9.0)] * 2


def test_a_part_she_did_not_record_names_no_recording():
    told = Telling("v-006", "life_stories", "s1", "We picked apples until our hands were "
                   "sticky.", 3.0)
    first, second = link_recordings(STORY, [told])
    assert first.recording_id == "v-006" and second.recording_id is None


def test_a_story_told_in_other_words_gives_every_part_the_whole_recording():
    told = Telling("v-007", "life_stories", "s1", "Oh, that summer in the orchard, love.", 2.5)
    linked = link_recordings([ANSWER, *STORY], [told])
    assert linked[0] == ANSWER  # another item: untouched
    assert [(p.recording_id, p.start_s, p.end_s) for p in linked[1:]] == \
        [("v-007", 0.0, 2.5)] * 2


def test_sources_carry_the_recording_only_when_there_is_one():
    [told] = link_recordings([ANSWER], [Telling("v-005", "responses", "r1",
                                                "I started at Hartley's bakery.", 4.2)])
    sources = Grounding([Hit(told, 0.03, 0.71, 2.0), Hit(STORY[0], 0.02, 0.5, 0.0)]).sources()
    assert sources[0]["recording"] == {"id": "v-005", "start_s": 0.0, "end_s": 4.2}
    assert "recording" not in sources[1]


def _flat(texts: list[str]) -> np.ndarray:  # the links, not the search, matter here
    return np.ones((len(texts), 384), np.float32) / np.sqrt(384)


def test_the_demo_answers_she_told_aloud_are_linked_in_her_memory(sqlite_settings):
    settings = sqlite_settings
    import_export(PERSONAS_DIR / "margaret-ellis", settings)
    collect_user_data(settings, "margaret-ellis", CollectOptions())
    built = build_memory(settings, "margaret-ellis", embed=_flat)
    assert built.recorded == 2
    told = {p.id: (p.recording_id, p.start_s) for p in load_memory(settings, "margaret-ellis")
            .passages if p.recording_id}
    assert told == {"responses:r-004#0": ("v-005", 0.0), "life_stories:s-002#0": ("v-006", 0.0)}


def test_a_memory_build_takes_the_seconds_from_voice_alignments_word_timings(
        sqlite_settings, persona, write_export):
    """A recording that says more than the answer it is linked to: once voice_alignment has
    timed its words, the passage plays only the seconds that say the answer's words."""
    settings, user = sqlite_settings, "margaret-ellis"
    doc = persona()
    told = next(r for r in doc["voice_recordings"] if r["id"] == "v-005")
    told["text"] = "Brenda Harker, from three doors down. Oh, we had such fun, the two of us."
    import_export(write_export(doc, audio_from=user), settings)
    collect_user_data(settings, user, CollectOptions())
    timings = write_json(user_folder(settings, "voice", user) / "integration-x" /
                         "word_timings.json",
                         {"v-005": [{"word": told["text"][w.char_start:w.char_end],
                                     "start": w.start_s, "end": w.end_s,
                                     "char_start": w.char_start, "char_end": w.char_end,
                                     "syllables": 1} for w in _timed(told["text"])]})
    with session_scope(settings.database_url) as session:
        voice.add_integration(session, user_id=users.user_id_of(session, user),
                              status=VoiceIntegrationStatus.PASSED, stages={
                                  "voice_text_alignment": {
                                      "word_timings_path": relative_to_root(settings, timings)}})
    build_memory(settings, user, embed=_flat)
    answer = next(p for p in load_memory(settings, user).passages if p.item_id == "r-004")
    # "Brenda Harker from three doors down": words 0-5, the last ending at 2.9 s
    assert (answer.recording_id, answer.start_s, answer.end_s) == ("v-005", 0.0, 3.05)
