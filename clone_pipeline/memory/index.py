"""A person's memory index: their passages, searched two ways and fused.

Lexical: BM25 (``bm25s``, Snowball-stemmed English with stop words removed) finds the exact
names, places and words a question shares with a passage. Dense: all-MiniLM-L6-v2 sentence
embeddings (the model evaluation already ships offline) find passages that say the same
thing in other words. They are fused by score: the cosine, plus up to a tenth for the
passages that share the question's rarest words (measured below); ``Hit.relevance`` (the
cosine alone) is what abstention compares with its measured threshold.

At family scale (up to about 10,000 passages) exact search in memory is fast: a brute-force
dot product over 10,000 x 384 floats and a sparse BM25 lookup each take about a millisecond.
Past a few hundred thousand passages an approximate index (HNSW in FAISS or hnswlib) would
replace the dot product. On disk (``<data root>/memory/<user>``): the passages as JSON lines,
their embeddings as one float32 array, and a manifest with the embedding model and each
passage's digest, written in one atomic folder swap; BM25 is rebuilt on load (milliseconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from clone_pipeline.files import atomic_path
from clone_pipeline.memory.passages import Passage

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
FORMAT_VERSION = 1
# Fused score = cosine + LEXICAL_WEIGHT x (BM25 / the best BM25 for the question): meaning
# ranks, and sharing the question's rare words (names, places) adds up to 0.1. Reciprocal-rank
# fusion threw the cosine margins away: at equal weight BM25 hits on common words ("most",
# "first") outranked the answer, and even at a tenth one shared word flipped ranks whose
# cosines were 0.28 and 0.64. On the demo fact sheets (30 held-out questions) a passage
# holding the answer is in the top 4 for 0.67 of them with equal-weight RRF, 0.90 with this
# (0.93 with embeddings alone, which miss exact names the way BM25 does not).
LEXICAL_WEIGHT = 0.1
_CANDIDATES = 20  # passages BM25 scores per question (the rest count as sharing no words)

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # fused score (cosine plus the lexical share), for ordering
    relevance: float  # dense cosine of question and passage, for abstention
    lexical: float  # BM25 score (0: no word in common)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _tokenizer():
    import bm25s

    return bm25s.tokenization.Tokenizer(stemmer=_stemmer(), stopwords="en")


def default_embed(texts: list[str]) -> np.ndarray:
    from clone_pipeline.training.evaluation import embed

    return embed(texts).astype(np.float32)


class MemoryIndex:
    """Passages with their embeddings and a BM25 index over the same texts."""

    def __init__(self, passages: Sequence[Passage], embeddings: np.ndarray):
        import bm25s

        if len(passages) != len(embeddings):
            raise ValueError(f"{len(passages)} passages but {len(embeddings)} embeddings")
        self.passages = list(passages)
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self._tokenizer = _tokenizer()
        self._bm25 = None
        if self.passages:
            ids = self._tokenizer.tokenize([p.searchable() for p in self.passages],
                                           return_as="ids", show_progress=False)
            self._bm25 = bm25s.BM25()
            self._bm25.index(ids, show_progress=False)

    def __len__(self) -> int:
        return len(self.passages)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, passages: Sequence[Passage], previous: MemoryIndex | None = None,
              embed: Embed = default_embed) -> tuple[MemoryIndex, int]:
        """The index of *passages*, reusing *previous*'s embedding of every passage whose
        digest is unchanged; also how many passages were embedded anew."""
        known = ({p.digest: row for p, row in zip(previous.passages, previous.embeddings,
                                                  strict=True)} if previous else {})
        fresh = [p for p in passages if p.digest not in known]
        new_rows = dict(zip((p.digest for p in fresh),
                            embed([p.searchable() for p in fresh]) if fresh else [],
                            strict=True))
        rows = [known.get(p.digest, new_rows.get(p.digest)) for p in passages]
        dim = len(rows[0]) if rows else 384
        return cls(passages, np.stack(rows) if rows else np.zeros((0, dim), np.float32)), \
            len(fresh)

    # ------------------------------------------------------------------ searching

    def search(self, question: str, k: int = 4, embed: Embed = default_embed,
               query_embedding: np.ndarray | None = None) -> list[Hit]:
        """The *k* passages that best answer *question*, best first."""
        if not self.passages or not question.strip():
            return []
        vector = query_embedding if query_embedding is not None else embed([question])[0]
        cosine = self.embeddings @ np.asarray(vector, dtype=np.float32)
        lexical = self._lexical_scores(question)
        top = float(lexical.max())
        fused = cosine + (LEXICAL_WEIGHT * lexical / top if top > 0 else 0.0)
        best = np.argsort(-fused, kind="stable")[:k]
        return [Hit(self.passages[i], float(fused[i]), float(cosine[i]), float(lexical[i]))
                for i in best]

    def _lexical_scores(self, question: str) -> np.ndarray:
        scores = np.zeros(len(self.passages), dtype=np.float32)
        query = self._tokenizer.tokenize([question], update_vocab=False, return_as="ids",
                                         show_progress=False)
        if self._bm25 is None or not query or not len(query[0]):
            return scores
        found, values = self._bm25.retrieve(query, k=min(_CANDIDATES, len(self.passages)),
                                            show_progress=False)
        scores[found[0]] = values[0]
        return scores

    # ------------------------------------------------------------------ storing

    def save(self, folder: Path) -> Path:
        """Write the index to *folder* in one atomic swap (a reader sees old or new)."""
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            with open(tmp / "passages.jsonl", "w", encoding="utf-8") as f:
                for p in self.passages:
                    f.write(json.dumps(p.as_dict(), ensure_ascii=False) + "\n")
            np.save(tmp / "embeddings.npy", self.embeddings)
            (tmp / "manifest.json").write_text(json.dumps({
                "format": FORMAT_VERSION, "embedding_model": EMBEDDING_MODEL,
                "passages": len(self.passages),
                "digests": [p.digest for p in self.passages]}, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path) -> MemoryIndex | None:
        """The index saved in *folder*, or None if there is none (or an older format)."""
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            if manifest.get("format") != FORMAT_VERSION or \
                    manifest.get("embedding_model") != EMBEDDING_MODEL:
                return None
            with open(folder / "passages.jsonl", encoding="utf-8") as f:
                passages = [Passage.from_dict(json.loads(line)) for line in f if line.strip()]
            embeddings = np.load(folder / "embeddings.npy")
        except (OSError, ValueError, KeyError):
            return None
        return cls(passages, embeddings)
