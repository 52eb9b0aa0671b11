"""Exact and near-duplicate removal in linear time (MinHash + locality-sensitive hashing).

All-pairs comparison is quadratic. Here every text gets a MinHash signature (computed in
vectorised chunks), the signature is cut into bands, and only texts that share a band bucket
are compared exactly, so time and memory grow linearly with the number of texts.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

_TOKEN = re.compile(r"\w+")
SHINGLE = 3  # words per shingle: a one-word edit in a 25-word answer keeps Jaccard ~0.75
BANDS, ROWS = 20, 5  # P(candidate) is 0.97 at Jaccard 0.7 and 0.05 at 0.3
_CHUNK = 4096  # texts per vectorised signature batch (bounds peak memory)
_MULTIPLIERS = (np.uint32(0x9E3779B1), np.uint32(0x85EBCA77))


@dataclass(frozen=True)
class DedupResult:
    keep: list[bool]  # one flag per input text, in order: True for the first of each group
    exact_duplicates: int
    near_duplicates: int


def _word_ids(tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Stable 32-bit id per word occurrence (flattened) and each text's start offset."""
    import pandas as pd  # here: importing the code location should not load pandas

    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    flat = [w for words in tokens for w in words]
    codes, uniques = pd.factorize(pd.Series(flat, dtype=object))
    vocab = np.fromiter((zlib.crc32(w.encode()) for w in uniques), dtype=np.uint32,
                        count=len(uniques))
    starts = np.concatenate(([0], np.cumsum(lengths)))
    return vocab[codes] if len(flat) else np.zeros(0, np.uint32), starts


def _shingle_hashes(ids: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    """Per text, the 32-bit hashes of its word trigrams (a text under 3 words gets one)."""
    out = []
    for begin, end in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        words = ids[begin:end]
        if len(words) >= SHINGLE:
            h = words[: len(words) - SHINGLE + 1].copy()
            for offset, mult in enumerate(_MULTIPLIERS[: SHINGLE - 1], start=1):
                h = h * mult + words[offset: len(words) - SHINGLE + 1 + offset]
        else:  # uint32 arithmetic wraps on purpose
            h = np.array([int(np.sum(words.astype(np.uint64) * 2654435761)) & 0xFFFFFFFF],
                         dtype=np.uint32)
        out.append(h)
    return out


def _signatures(shingles: list[np.ndarray], a: np.ndarray, b: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures (n_texts, BANDS*ROWS) and their (n_texts, BANDS) band keys."""
    keys, signatures = [], []
    for start in range(0, len(shingles), _CHUNK):
        batch = shingles[start:start + _CHUNK]
        lengths = np.fromiter((len(s) for s in batch), dtype=np.int64, count=len(batch))
        flat = np.concatenate(batch)
        # h_i(x) = a_i * x + b_i mod 2^32 with odd a_i permutes the 32-bit values.
        # (permutations, shingles): the reduction then runs along contiguous memory.
        hashed = np.multiply.outer(a, flat)
        hashed += b[:, None]
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        signature = np.ascontiguousarray(np.minimum.reduceat(hashed, offsets, axis=1).T)
        banded = signature.reshape(len(batch), BANDS, ROWS).astype(np.uint64)
        folded = np.zeros((len(batch), BANDS), dtype=np.uint64)
        for r in range(ROWS):
            folded = folded * np.uint64(1_000_003) + banded[:, :, r]
        keys.append(folded)
        signatures.append(signature)
    if not keys:
        return np.zeros((0, BANDS * ROWS), np.uint32), np.zeros((0, BANDS), np.uint64)
    return np.concatenate(signatures), np.concatenate(keys)


def _shares_a_bucket(keys: np.ndarray) -> np.ndarray:
    """Boolean per text: does any of its band keys occur for another text too?"""
    import pandas as pd

    shared = np.zeros(len(keys), dtype=bool)
    for band in range(BANDS):
        shared |= pd.Series(keys[:, band]).duplicated(keep=False).to_numpy()
    return shared


def deduplicate(texts: list[str], threshold: float = 0.7, seed: int = 1) -> DedupResult:
    """Flag exact duplicates (same words, ignoring case and punctuation) and near duplicates
    (word-trigram Jaccard >= *threshold* with an earlier kept text). The first one is kept.

    Candidates from the LSH buckets are verified by MinHash agreement (the share of equal
    signature values estimates Jaccard, +-0.05 at 100 values), all candidates in one
    vectorised comparison, so a text that collides with many others stays cheap.
    """
    import pandas as pd

    tokens = [_TOKEN.findall(t.lower()) for t in texts]
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 2**31, size=BANDS * ROWS, dtype=np.uint32) * 2 + 1).astype(np.uint32)
    b = rng.integers(0, 2**32, size=BANDS * ROWS, dtype=np.uint64).astype(np.uint32)
    shingles = _shingle_hashes(*_word_ids(tokens))
    signatures, keys = _signatures(shingles, a, b)

    # Exact duplicates (same words in the same order) by hashing, in C.
    exact_mask = pd.Series([" ".join(words) for words in tokens]).duplicated().to_numpy()
    keep = ~exact_mask
    candidates_idx = np.flatnonzero(keep)
    shared = np.zeros(len(texts), dtype=bool)
    shared[candidates_idx] = _shares_a_bucket(keys[candidates_idx])

    # Only texts that share a bucket with another can be near duplicates; visit them in
    # order so the first of each group is the one kept.
    buckets: list[dict[int, list[int]]] = [{} for _ in range(BANDS)]
    near = 0
    for index in np.flatnonzero(shared).tolist():
        band_keys = keys[index].tolist()
        candidates = {c for band, key in zip(buckets, band_keys, strict=True)
                      for c in band.get(key, ())}
        if candidates and (signatures[list(candidates)] == signatures[index]).mean(
                axis=1).max() >= threshold:
            keep[index] = False
            near += 1
            continue
        for band, key in zip(buckets, band_keys, strict=True):
            band.setdefault(key, []).append(index)
    return DedupResult(keep.tolist(), int(exact_mask.sum()), near)
