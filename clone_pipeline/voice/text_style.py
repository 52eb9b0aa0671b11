"""The written side of voice alignment: how the person writes, and the emotion of a text.

Emotion comes from a small valence/arousal lexicon written for this project (values in
[-1, 1], after the usual circumplex: arousal is how activated, valence how pleasant). It is
deliberately small and transparent; a passage with no lexicon words reads as neutral.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

# word: (valence, arousal)
LEXICON: dict[str, tuple[float, float]] = {
    # pleasant, activated
    "joy": (0.9, 0.7), "happy": (0.8, 0.5), "laugh": (0.8, 0.7), "laughed": (0.8, 0.7),
    "laughing": (0.8, 0.7), "excited": (0.7, 0.9), "thrilled": (0.8, 0.9),
    "wonderful": (0.8, 0.5), "beautiful": (0.8, 0.4), "delight": (0.8, 0.6),
    "celebrate": (0.8, 0.8), "celebrated": (0.8, 0.8), "dance": (0.7, 0.8),
    "danced": (0.7, 0.8), "proud": (0.7, 0.5), "love": (0.9, 0.5), "loved": (0.9, 0.5),
    "birthday": (0.7, 0.6), "wedding": (0.8, 0.6), "party": (0.7, 0.7), "win": (0.7, 0.8),
    "won": (0.7, 0.8), "surprise": (0.4, 0.8), "amazing": (0.8, 0.7), "bright": (0.6, 0.4),
    "rainbow": (0.7, 0.3), "colors": (0.5, 0.3), "strikes": (-0.1, 0.6),
    # pleasant, calm
    "calm": (0.5, -0.7), "quiet": (0.3, -0.6), "peaceful": (0.7, -0.7), "gentle": (0.6, -0.5),
    "warm": (0.6, -0.2), "kettle": (0.3, -0.3), "kitchen": (0.3, -0.2), "home": (0.6, -0.3),
    "tea": (0.3, -0.4), "rest": (0.4, -0.7), "slowly": (0.1, -0.6), "soft": (0.5, -0.5),
    "grateful": (0.8, -0.1), "thankful": (0.8, -0.1), "comfort": (0.7, -0.4),
    "family": (0.6, 0.0), "story": (0.3, 0.1), "garden": (0.5, -0.4), "sunday": (0.4, -0.4),
    "ancient": (0.0, -0.4), "old": (-0.1, -0.4), "usually": (0.0, -0.4), "sun": (0.5, 0.1),
    # unpleasant, activated
    "angry": (-0.7, 0.8), "furious": (-0.8, 0.9), "afraid": (-0.7, 0.7),
    "scared": (-0.7, 0.7), "fear": (-0.7, 0.7), "panic": (-0.8, 0.9), "shouted": (-0.4, 0.8),
    "fight": (-0.6, 0.8), "argument": (-0.5, 0.6), "disputing": (-0.4, 0.6),
    "storm": (-0.3, 0.7), "war": (-0.8, 0.8), "crash": (-0.7, 0.8), "worried": (-0.5, 0.5),
    "stronger": (0.2, 0.6), "swiftly": (0.2, 0.6), "hurry": (-0.1, 0.7), "rushed": (-0.2, 0.7),
    # unpleasant, calm
    "sad": (-0.7, -0.4), "lonely": (-0.7, -0.4), "tired": (-0.4, -0.7), "grief": (-0.8, -0.2),
    "miss": (-0.5, -0.2), "missed": (-0.5, -0.2), "lost": (-0.6, -0.1), "died": (-0.8, -0.2),
    "funeral": (-0.8, -0.3), "cold": (-0.3, -0.2), "alone": (-0.5, -0.4), "sorry": (-0.4, -0.2),
    "regret": (-0.6, -0.2), "hospital": (-0.5, 0.2),
}
_NEGATIONS = {"not", "never", "no", "nobody", "nothing", "hardly", "n't"}
FILLERS = ("well", "you know", "i mean", "like", "sort of", "kind of", "anyway", "actually",
           "oh", "honestly", "basically", "mind you")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def text_emotion(text: str) -> dict[str, float | int]:
    """Mean valence and arousal of the lexicon words in *text* (negation flips valence)."""
    words = _WORD.findall(text.lower())
    vals, ars = [], []
    for i, w in enumerate(words):
        if w in LEXICON:
            v, a = LEXICON[w]
            if any(x in _NEGATIONS for x in words[max(0, i - 3):i]):
                v = -v
            vals.append(v)
            ars.append(a)
    return {"valence": round(float(np.mean(vals)), 3) if vals else 0.0,
            "arousal": round(float(np.mean(ars)), 3) if ars else 0.0,
            "lexicon_words": len(vals)}


def writing_style(texts: list[str]) -> dict[str, float]:
    """Sentence length, fillers and punctuation habits of the person's written material."""
    text = " ".join(texts)
    lower = text.lower()
    words = _WORD.findall(lower)
    n = max(len(words), 1)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    lengths = [len(_WORD.findall(s.lower())) for s in sentences] or [0]
    enders = Counter(s.strip()[-1] for s in sentences if s.strip())
    filler_count = sum(len(re.findall(rf"\b{re.escape(f)}\b", lower)) for f in FILLERS)
    s = max(len(sentences), 1)
    return {
        "sentences": len(sentences),
        "sentence_length_median": float(np.median(lengths)),
        "sentence_length_p90": float(np.percentile(lengths, 90)),
        "fillers_per_100_words": round(100 * filler_count / n, 2),
        "commas_per_sentence": round(text.count(",") / s, 2),
        "exclamation_share": round(enders["!"] / s, 3),
        "question_share": round(enders["?"] / s, 3),
        "ellipses_per_1000_words": round(1000 * (text.count("...") + text.count("…")) / n, 2),
        "dashes_per_1000_words": round(1000 * len(re.findall(r"\s[-–—]\s|—", text)) / n, 2),
    }
