"""Extractive summaries (docs/architecture.md, step 6): the fallback that needs no model, so a summary always exists.

`rank_sentences` scores each sentence by

* centrality: LexRank over TF-IDF vectors (how much of the article's vocabulary a sentence
  shares with the other sentences: the sentences the story keeps coming back to), and
* a lead prior: news is written top-down, so earlier sentences weigh more
  (1 / (1 + position / LEAD_DECAY)),

damps very short sentences, then picks the best ones greedily, skipping a sentence too
similar to one already picked, and returns the picks in article order.

Tokenization is language-agnostic: lower-cased letter/digit runs and their adjacent pairs
(which catches Vietnamese words, written as space-separated syllables), and character
bigrams for scripts written without spaces (Chinese, Japanese, Thai, ...). No stop-word
lists: inverse document frequency already discounts words every sentence uses.

Deterministic: no randomness; ties go to the earlier sentence.

Bounded: LexRank compares every pair of sentences, so only the first `MAX_RANKED_SENTENCES`
are ranked (news puts what matters first, and the lead prior already all but rules out
the tail of a long text); the similarities are summed over blocks of terms, so memory
stays bounded by sentences × `_TERMS_PER_BLOCK` whatever the vocabulary. The work is then
linear in the text: the features of the ranked sentences, plus a fixed cost per block.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Sequence

import numpy as np

from pipeline.languages import NO_SPACE_SCRIPTS, normalize_code
from pipeline.segment import NO_SPACE_CHARS

CENTRALITY_WEIGHT = 0.6  # the rest is the lead prior
LEAD_DECAY = 3.0  # the 4th sentence weighs half the 1st
MIN_WORDS = 8  # sentences shorter than this are damped in proportion
REDUNDANCY = 0.6  # cosine similarity above which a sentence repeats one already picked
DAMPING = 0.85  # LexRank's random-walk damping
_ITERATIONS = 100
MAX_RANKED_SENTENCES = 500  # sentences past these are never picked (see the module's docstring)
_TERMS_PER_BLOCK = 2048

_RUN = re.compile(r"[^\W_]+")


def _features(sentence: str, no_space: bool) -> tuple[Counter[str], int]:
    """Term counts of a sentence, and its length in words (two characters per word without spaces)."""
    text = unicodedata.normalize("NFKC", sentence).casefold()
    words: list[str] = []
    terms: Counter[str] = Counter()
    length = 0
    for run in _RUN.findall(text):
        if no_space or NO_SPACE_CHARS.search(run):
            grams = [run[i : i + 2] for i in range(len(run) - 1)] or [run]
            terms.update(grams)
            length += (len(run) + 1) // 2
            words.append("")  # a script boundary breaks word pairs
        else:
            words.append(run)
            terms[run] += 1
            length += 1
    terms.update(f"{a} {b}" for a, b in zip(words, words[1:]) if a and b)
    return terms, length


def _similarity(bags: list[Counter[str]]) -> np.ndarray:
    """Cosine similarities of the sentences' L2-normalized TF-IDF vectors.

    Only terms shared by two sentences or more take a column: a term only one sentence
    uses adds nothing to any similarity, though it still counts in its sentence's norm,
    which keeps the cosines exact. The columns are filled and multiplied a block at a time,
    each block holding only the sentences that use one of its terms.
    """
    df: Counter[str] = Counter()
    for bag in bags:
        df.update(bag.keys())
    n = len(bags)
    index = {term: i for i, term in enumerate(sorted(t for t, k in df.items() if k > 1))}
    rows: list[int] = []
    columns: list[int] = []
    weights: list[float] = []
    norms = np.zeros(n, dtype=np.float64)
    for row, bag in enumerate(bags):
        for term, count in bag.items():
            weight = (1.0 + math.log(count)) * (math.log((1 + n) / (1 + df[term])) + 1.0)
            norms[row] += weight * weight
            column = index.get(term)
            if column is not None:
                rows.append(row)
                columns.append(column)
                weights.append(weight)
    norms = np.sqrt(norms)
    row_of = np.asarray(rows, dtype=np.intp)
    column_of = np.asarray(columns, dtype=np.intp)
    value = np.asarray(weights, dtype=np.float64)
    value = np.divide(value, norms[row_of], out=np.zeros_like(value), where=norms[row_of] > 0)
    order = np.argsort(column_of, kind="stable")
    row_of, column_of, value = row_of[order], column_of[order], value[order]

    similarity = np.zeros((n, n), dtype=np.float64)
    for first in range(0, len(index), _TERMS_PER_BLOCK):
        lo, hi = np.searchsorted(column_of, [first, first + _TERMS_PER_BLOCK])
        block_rows, local_rows = np.unique(row_of[lo:hi], return_inverse=True)
        block = np.zeros((len(block_rows), min(_TERMS_PER_BLOCK, len(index) - first)), dtype=np.float64)
        block[local_rows, column_of[lo:hi] - first] = value[lo:hi]
        similarity[np.ix_(block_rows, block_rows)] += block @ block.T
    return similarity


def _lexrank(similarity: np.ndarray) -> np.ndarray:
    """Stationary distribution of the damped random walk over the similarity graph."""
    n = similarity.shape[0]
    weights = similarity.copy()
    np.fill_diagonal(weights, 0.0)
    sums = weights.sum(axis=1, keepdims=True)
    transition = np.divide(weights, sums, out=np.full_like(weights, 1.0 / n), where=sums > 0)
    scores = np.full(n, 1.0 / n)
    for _ in range(_ITERATIONS):
        updated = (1.0 - DAMPING) / n + DAMPING * (transition.T @ scores)
        if np.abs(updated - scores).sum() < 1e-10:
            scores = updated
            break
        scores = updated
    return scores


def rank_sentences(sentences: Sequence[str], lang: str, max_sentences: int) -> list[str]:
    """The best `max_sentences` of `sentences` (fewer if there are fewer), in original order."""
    if max_sentences < 0:
        raise ValueError(f"max_sentences must not be negative (got {max_sentences})")
    sentences = list(sentences)
    if max_sentences == 0 or not sentences:
        return []
    if len(sentences) <= max_sentences:
        return sentences

    no_space = normalize_code(lang) in NO_SPACE_SCRIPTS if lang else False
    features = [_features(s, no_space) for s in sentences[:MAX_RANKED_SENTENCES]]
    similarity = _similarity([bag for bag, _ in features])

    centrality = _lexrank(similarity)
    centrality = centrality / centrality.max()
    scores = []
    for i, (_, length) in enumerate(features):
        lead = 1.0 / (1.0 + i / LEAD_DECAY)
        score = (CENTRALITY_WEIGHT * centrality[i] + (1.0 - CENTRALITY_WEIGHT) * lead) * min(1.0, length / MIN_WORDS)
        scores.append(round(float(score), 9))  # rounding keeps ties ties across BLAS builds

    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    picked: list[int] = []
    skipped: list[int] = []
    for i in order:
        if len(picked) == max_sentences:
            break
        if any(similarity[i, j] > REDUNDANCY for j in picked):
            skipped.append(i)
        else:
            picked.append(i)
    picked.extend(skipped[: max_sentences - len(picked)])  # only when nothing else is left
    return [sentences[i] for i in sorted(picked)]
