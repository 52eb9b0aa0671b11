"""Word timings for a recording of a known text.

Primary: pocketsphinx forced alignment with its bundled en-us acoustic model and cmudict;
words the dictionary lacks get a pronunciation from eSpeak NG's phonemes. Cross-check: render
the same text with eSpeak NG (whose word positions are known), and map those positions onto
the recording by dynamic time warping of MFCCs. Where the two disagree by more than
FLAG_MS on a passage's median word, the passage is flagged.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass

import numpy as np

from clone_pipeline.voice import espeak
from clone_pipeline.voice.audio_io import ANALYSIS_RATE, resample
from clone_pipeline.voice.lazy import process_singleton

FLAG_MS = 150.0
_FRAME_S = 0.01  # pocketsphinx frames are 10 ms
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]"}
_VOWEL_PHONES = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY",
                 "UH", "UW"}


def _syllables(phones: str) -> int:
    return max(1, sum(p in _VOWEL_PHONES for p in phones.split()))


class AlignmentError(ValueError):
    """The recording could not be aligned to its transcript; the message says why."""


@dataclass(frozen=True)
class Token:
    text: str  # as written
    key: str  # dictionary form (lower case)
    char_start: int
    char_end: int


@dataclass
class WordTiming:
    word: str
    start: float  # seconds
    end: float
    char_start: int
    char_end: int
    syllables: int

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Alignment:
    words: list[WordTiming]


def tokenize(text: str) -> list[Token]:
    """Words of *text* with their character spans (hyphens and dashes split words)."""
    return [Token(m.group(0), m.group(0).lower(), m.start(), m.end())
            for m in _WORD_RE.finditer(text)]


class _Aligner:
    """One pocketsphinx decoder per process (loading its model takes a few hundred ms)."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        # Wider beams than decoding uses: alignment of a known text can afford them, and
        # the default ones lose fast or monotonous speech.
        self.decoder = Decoder(lm=None, samprate=ANALYSIS_RATE, loglevel="FATAL", beam=1e-60,
                               wbeam=1e-40, pbeam=1e-60)
        self.lock = threading.Lock()

    def pronunciation(self, key: str) -> str:
        """ARPAbet for *key*: cmudict's, else learnt from eSpeak NG's phonemes."""
        phones = self.decoder.lookup_word(key)
        if phones:
            return phones
        phones = espeak.arpabet(key)
        if not phones:
            raise AlignmentError(f"no pronunciation for the word {key!r}")
        self.decoder.add_word(key, phones, True)
        return phones

    def align(self, audio: np.ndarray, tokens: list[Token]) -> Alignment:
        with self.lock:
            syllables = {tok.key: _syllables(self.pronunciation(tok.key)) for tok in tokens}
            # A faint noise floor under the speech: digital silence (synthetic or gated
            # recordings) breaks the decoder's feature normalisation. Measured on the demo
            # voices, -28 dB under the speech level aligns every passage; the other levels
            # are retries. Seeded, so results repeat.
            level = float(np.sqrt(np.mean(audio**2))) or 1e-3
            rng = np.random.default_rng(0)
            for relative in (0.04, 0.12, 0.012):
                noisy = audio + relative * level * rng.standard_normal(len(audio))
                segments = self._decode(noisy, tokens)
                spoken = [s for s in segments if s.word not in _FILLERS]
                if len(spoken) == len(tokens):
                    break
        if len(spoken) != len(tokens):
            raise AlignmentError("speech does not match the transcript (different words, "
                                 "another language, or no speech)")
        words = []
        for tok, seg in zip(tokens, spoken, strict=True):
            start, end = seg.start_frame * _FRAME_S, (seg.end_frame + 1) * _FRAME_S
            words.append(WordTiming(tok.text, start, end, tok.char_start, tok.char_end,
                                    syllables[tok.key]))
        return Alignment(words)

    def _decode(self, audio: np.ndarray, tokens: list[Token]) -> list:
        d = self.decoder
        d.set_align_text(" ".join(t.key for t in tokens))
        d.start_utt()
        d.process_raw((np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes(),
                      full_utt=True)
        d.end_utt()
        return list(d.seg()) if d.hyp() is not None else []


_get_aligner = process_singleton(_Aligner)


def syllable_count(text: str) -> int:
    """Syllables in *text* from its pronunciations (cmudict, else eSpeak NG)."""
    aligner = _get_aligner()
    with aligner.lock:
        return sum(_syllables(aligner.pronunciation(t.key)) for t in tokenize(text))


def forced_align(audio: np.ndarray, text: str) -> Alignment:
    """Word timings of *text* in *audio* (mono, ANALYSIS_RATE) by pocketsphinx."""
    tokens = tokenize(text)
    if not tokens:
        raise AlignmentError("the transcript has no words")
    alignment = _get_aligner().align(audio, tokens)
    durations = [w.end - w.start for w in alignment.words]
    if sum(d < 0.03 for d in durations) > max(1, len(durations) // 5):
        raise AlignmentError("speech does not match the transcript (most words could not be "
                             "placed)")
    return alignment


def dtw_word_starts(audio: np.ndarray, text: str) -> list[float]:
    """Word start times by MFCC dynamic time warping against an eSpeak NG rendering."""
    import librosa

    tokens = tokenize(text)
    joined = " ".join(t.text for t in tokens)
    rendering = espeak.render(joined)
    reference = resample(rendering.audio, rendering.sample_rate, ANALYSIS_RATE)
    hop = int(ANALYSIS_RATE * _FRAME_S)
    feats = [librosa.feature.mfcc(y=x, sr=ANALYSIS_RATE, n_mfcc=20, hop_length=hop,
                                  n_fft=400)[1:] for x in (reference, audio)]
    # per-utterance mean/variance normalisation: the two voices differ in level and timbre
    feats = [(f - f.mean(axis=1, keepdims=True)) / (f.std(axis=1, keepdims=True) + 1e-6)
             for f in feats]
    _, path = librosa.sequence.dtw(X=feats[0], Y=feats[1], metric="cosine")
    path = path[::-1]
    ref_frames, rec_frames = path[:, 0], path[:, 1]
    reference_starts = _token_starts(tokens, rendering) * ANALYSIS_RATE / hop
    idx = np.minimum(np.searchsorted(ref_frames, reference_starts.astype(int)),
                     len(rec_frames) - 1)
    return [float(f) * _FRAME_S for f in rec_frames[idx]]


def _token_starts(tokens: list[Token], rendering: espeak.Rendering) -> np.ndarray:
    """Start (s) of each token in an eSpeak rendering of the tokens joined by spaces.

    eSpeak fuses some unstressed words with their neighbour and reports one event for both;
    those tokens are placed by interpolating on character position.
    """
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok.text) + 1
    known = {char: sample / rendering.sample_rate for char, _, sample in rendering.words}
    xs = [o for o in offsets if o in known]
    if not xs:
        raise AlignmentError("eSpeak NG reported no word positions for the transcript")
    xs_end = xs + [pos]
    ys = [known[o] for o in xs] + [rendering.duration_s]
    return np.interp(offsets, xs_end, ys)


def cross_check(alignment: Alignment, dtw_starts: list[float]) -> dict[str, float | bool]:
    """How far the two methods' word starts disagree (ms); flagged above FLAG_MS median."""
    diffs = np.abs(np.array([w.start for w in alignment.words]) - np.array(dtw_starts)) * 1000
    median = float(np.median(diffs))
    return {"median_ms": round(median, 1), "p90_ms": round(float(np.percentile(diffs, 90)), 1),
            "agreement": round(float(np.mean(diffs <= FLAG_MS)), 3),
            "flagged": bool(median > FLAG_MS)}
