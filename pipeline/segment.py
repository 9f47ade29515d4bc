"""Segmentation (docs/architecture.md, step 5): paragraphs → sentences → chunks that fit a model's input.

Sentences
    `split_sentences(text, lang)` splits on paragraph breaks first (a paragraph break is
    always a sentence break), then inside each paragraph with a segmenter that knows the
    language:

    * pysbd for the languages it has rules for (en, de, fr, es, ru, ...), one segmenter per
      language and thread (pysbd keeps per-call state on the instance, so a shared one is
      not safe across threads);
    * a rule-based splitter for everything else (Vietnamese, Portuguese, Korean, ...):
      a break after . ! ? … when the next word starts a sentence (upper case, a digit or an
      opening quote) and the word before is not an abbreviation or an initial;
    * the same splitter, with full-width 。！？ and their closing quotes, for Chinese and
      Japanese. pysbd has rules for zh/ja but cuts “他说：好。”然后 between the full stop
      and its closing quote, which is worse than the plain rule.

    pysbd sometimes misses abbreviations (Spanish "Sr.") or drops text it has rewritten; a
    paragraph whose pysbd segments do not add back up to the paragraph is split with the
    rule-based splitter instead, and a segment that ends in a known abbreviation, or is
    followed by one that starts in lower case, is joined to the next. Segments never lose
    or reorder characters other than whitespace at the seams.

    Splitting is linear in the text, whatever the text: each candidate break looks at the
    word before it only (never at the sentence so far: a run of "U.S. U.S. …" would make
    that quadratic), and pysbd, which is quadratic on such runs and maps every sentence it
    finds back by searching its whole input again, never reads more than PYSBD_MAX_CHARS
    at once. A longer paragraph is cut at the rule-based splitter's breaks (or, with none
    in reach, at a space, and the sentence cut that way is joined again); on news text that
    gives the sentences pysbd finds reading the whole paragraph.

Chunks
    `pack_chunks(sentences, count_tokens, max_tokens)` packs consecutive sentences greedily.
    Token counts come from the model's tokenizer through `count_tokens`, called once for
    all the sentences (and once more per round of splitting, only when a sentence alone is
    over the limit). A chunk's cost is the sum of its sentences' counts: each count includes
    the tokenizer's special tokens (e.g. `</s>`), so the sum over-estimates the joined text
    slightly, which errs on the side of fitting.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Callable, Sequence

import pysbd
from pysbd.languages import LANGUAGE_CODES as _PYSBD_CODES

from pipeline.languages import normalize_code

# --------------------------------------------------------------------------------------
# Paragraphs
# --------------------------------------------------------------------------------------

# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, Japanese kana, CJK.
NO_SPACE_CHARS = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)

_SENTENCE_END = ".!?…。！？:;"  # a line ending in one of these is not hard-wrapped
_CLOSERS = "\"'”’»)]」』）›"


def ends_sentence(text: str) -> bool:
    """Whether `text` ends like a sentence (terminal mark, possibly inside closing quotes)."""
    stripped = text.rstrip().rstrip(_CLOSERS).rstrip()
    return bool(stripped) and stripped[-1] in _SENTENCE_END


def starts_lower(text: str) -> bool:
    """Whether `text` starts with a lower-case word (and that word has no capitals: 'iPhone')."""
    m = re.match(r"[^\W\d_]+", text)
    return bool(m) and m.group()[0].islower() and not any(c.isupper() for c in m.group())


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of `text`, whitespace collapsed.

    A blank line ends a paragraph. A single line break does too, except a hard wrap: the line
    does not end like a sentence and the next one starts in lower case, so they are one
    sentence broken across lines.
    """
    paragraphs: list[str] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        if current and not (not ends_sentence(current[-1]) and starts_lower(line)):
            paragraphs.append(" ".join(current))
            current = []
        current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


# --------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------

# Chinese and Japanese: full-width punctuation, no spaces between sentences.
_CJK_LANGS = frozenset({"zh", "ja", "yue", "wuu"})
_PYSBD_LANGS = frozenset(_PYSBD_CODES) - _CJK_LANGS

# Abbreviations that come before something (a name, a number) and so never end a sentence:
# a full stop after one is not a break. Lower-cased, without the stop. Words that may end a
# sentence ("etc.", "Inc.", "Jr.") are left out on purpose: a missed break costs less than a
# wrong one, but these are more often breaks. Initials ("Nguyễn V. Anh") are handled apart.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof st gen gov sen rep col capt lt sgt vs approx
    sr sra srta sres dra ud uds dña lic ing arq av avda pág núm
    tp ts ths gs pgs bs ks
    """.split()
)

# Possessive runs (`*+`, `++`) and a look-behind that starts a match only at the first mark of
# a run keep the scan linear: a long run of marks or quotes is read once, not once per start.
_CLOSE = r"[\"'”’»)\]」』）]*+"
# A candidate break: terminal punctuation, closing quotes, whitespace.
_LATIN_BREAK = re.compile(rf"(?<![.!?…])[.!?…]++{_CLOSE}(\s+)")
# Full-width terminal punctuation breaks without any space after it.
_CJK_BREAK = re.compile(rf"[。！？!?]++{_CLOSE}(\s*)|(?<![.!?…])[.!?…]++{_CLOSE}(\s+)")
_SENTENCE_START = re.compile(r"[\"'“‘«„(\[¿¡–—-]*+\s*(\w)")
_WORD = re.compile(r"\w+")
_LETTERS_AT_END = re.compile(r"[^\W\d_]+$")
_FULL_WIDTH_STOP = re.compile(r"[。！？]")
_LONGEST_ABBREVIATION = max(map(len, ABBREVIATIONS))

# pysbd's rules are quadratic, or worse, on some long runs ("U.S. U.S. …", "1. 1. …"), so it
# never sees more than this many characters at once (see `_pysbd_split`). News paragraphs are
# far shorter: below this, pysbd reads the whole paragraph, as it always did.
PYSBD_MAX_CHARS = 1_000


def _starts_sentence(paragraph: str, pos: int) -> bool:
    """The text from `pos` (not whitespace) starts a sentence: not a lower-case letter
    (caseless scripts, digits and capitals all do), after any opening quotes or brackets."""
    m = _SENTENCE_START.match(paragraph, pos)
    return not m.group(1).islower() if m else pos < len(paragraph)


def _abbreviation_ends(text: str, word: re.Match[str] | None, floor: int, initials: bool) -> bool:
    """Whether `text` up to some end is "<known abbreviation>." followed by nothing but
    punctuation and spaces, given `word`, the last run of word characters before that end.

    A known abbreviation, or (if `initials`) a single capital letter, right before the stop.
    Only the last few characters of the word are read: a word longer than every
    abbreviation is none of them. Nothing before `floor` counts.
    """
    if word is None or word.start() < floor:
        return False
    stop = word.end()
    if stop >= len(text) or text[stop] != ".":
        return False
    window_start = max(word.start(), stop - _LONGEST_ABBREVIATION - 1)
    letters = _LETTERS_AT_END.search(text, window_start, stop)
    if not letters or len(letters.group()) > _LONGEST_ABBREVIATION:  # none, or a longer word
        return False
    token = letters.group()
    if len(token) == 1 and token.isupper():
        return initials
    return token.casefold() in ABBREVIATIONS


class _LastWord:
    """The last run of word characters that ends at or before a position, for positions
    asked in increasing order: the words are read once, whatever the number of questions."""

    def __init__(self, text: str):
        self._words = _WORD.finditer(text)
        self._next = next(self._words, None)
        self._last: re.Match[str] | None = None

    def before(self, pos: int) -> re.Match[str] | None:
        while self._next is not None and self._next.end() <= pos:
            self._last, self._next = self._next, next(self._words, None)
        return self._last


def _rule_breaks(paragraph: str, cjk: bool) -> list[int]:
    """Where the rule-based splitter breaks `paragraph`: offsets where a sentence starts."""
    pattern = _CJK_BREAK if cjk else _LATIN_BREAK
    last_word = _LastWord(paragraph)
    breaks: list[int] = []
    start = 0
    for m in pattern.finditer(paragraph):
        end = m.end()
        if end >= len(paragraph):
            break
        if not _starts_sentence(paragraph, end) or _abbreviation_ends(paragraph, last_word.before(end), start, True):
            continue
        breaks.append(end)
        start = end
    return breaks


def _rule_split(paragraph: str, cjk: bool) -> list[str]:
    """The rule-based splitter: break where a sentence ends and the next one visibly starts."""
    bounds = [0, *_rule_breaks(paragraph, cjk), len(paragraph)]
    sentences = (paragraph[a:b].strip() for a, b in zip(bounds, bounds[1:]))
    return [s for s in sentences if s]


_local = threading.local()


def _segmenter(lang: str) -> pysbd.Segmenter:
    """One pysbd segmenter per language per thread (segment() keeps state on the instance)."""
    cache = getattr(_local, "segmenters", None)
    if cache is None:
        cache = _local.segmenters = {}
    seg = cache.get(lang)
    if seg is None:
        seg = cache[lang] = pysbd.Segmenter(language=lang, clean=False, char_span=False)
    return seg


def _squash(text: str) -> str:
    return "".join(text.split())


def _pysbd_windows(paragraph: str) -> list[tuple[str, str | None]]:
    """`paragraph` cut into pieces of at most PYSBD_MAX_CHARS, each with how it joins the
    next: None where the cut is a rule-based sentence break (the sentences stay apart),
    " " or "" where no break was found in reach and the cut falls at a space or, failing
    one, anywhere (the sentences either side of it are joined again)."""
    if len(paragraph) <= PYSBD_MAX_CHARS:
        return [(paragraph, None)]
    breaks = _rule_breaks(paragraph, cjk=False)
    windows: list[tuple[str, str | None]] = []
    start, i = 0, 0
    while len(paragraph) - start > PYSBD_MAX_CHARS:
        limit = start + PYSBD_MAX_CHARS
        while i < len(breaks) and breaks[i] <= limit:
            i += 1
        if i and breaks[i - 1] > start:
            cut, joiner, resume = breaks[i - 1], None, breaks[i - 1]
        else:
            space = paragraph.rfind(" ", start + 1, limit)
            cut, joiner, resume = (space, " ", space + 1) if space > 0 else (limit, "", limit)
        windows.append((paragraph[start:cut], joiner))
        start = resume
    windows.append((paragraph[start:], None))
    return windows


def _pysbd_window_split(window: str, lang: str) -> list[str]:
    try:
        parts = [s.strip() for s in _segmenter(lang).segment(window)]
    except Exception:  # pysbd has regex corner cases; the rule-based splitter always works
        return _rule_split(window, cjk=False)
    parts = [p for p in parts if p]
    if _squash("".join(parts)) != _squash(window):  # pysbd lost or rewrote text
        return _rule_split(window, cjk=False)
    return parts


def _ends_in_title(text: str) -> bool | None:
    """Whether `text` ends in a known abbreviation and its stop (initials not counted);
    None if `text` has no word at all, so only what came before it can tell."""
    last = None
    for last in _WORD.finditer(text):
        pass
    return None if last is None else _abbreviation_ends(text, last, 0, initials=False)


def _pysbd_split(paragraph: str, lang: str) -> list[str]:
    # Segments, each a list of pieces joined once at the end (a segment may run across many
    # windows: joining as it grows would copy it once per window).
    pieces: list[list[str]] = []
    glue_next: str | None = None
    for window, joiner in _pysbd_windows(paragraph):
        window_parts = _pysbd_window_split(window.strip(), lang)
        if glue_next is not None and pieces and window_parts:
            pieces[-1] += [glue_next, window_parts.pop(0)]
        pieces.extend([part] for part in window_parts)
        glue_next = joiner
    parts = ["".join(segment_pieces) for segment_pieces in pieces]
    # pysbd knows initials ("U.S."), but not every title before a name ("Sr. García"). Each
    # sentence is built as a list of parts and joined once, and whether it ends in a title is
    # carried along, so a long run of joins stays linear.
    merged: list[list[str]] = []
    title_at_end = False
    for part in parts:
        if merged and (title_at_end or starts_lower(part)):
            merged[-1].append(part)
        else:
            merged.append([part])
            title_at_end = False
        ends = _ends_in_title(part)
        title_at_end = title_at_end if ends is None else ends
    return [" ".join(sentence) for sentence in merged]


def split_sentences(text: str, lang: str) -> list[str]:
    """Sentences of `text` in language `lang` (ISO code), in order, stripped, none empty."""
    lang = normalize_code(lang) if lang else ""
    sentences: list[str] = []
    for paragraph in split_paragraphs(text):
        if lang in _PYSBD_LANGS:
            sentences.extend(_pysbd_split(paragraph, lang))
        else:
            cjk = lang in _CJK_LANGS or _FULL_WIDTH_STOP.search(paragraph) is not None
            sentences.extend(_rule_split(paragraph, cjk=cjk))
    return sentences


# --------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------

CountTokens = Callable[[Sequence[str]], list[int]]


def pack_chunks(sentences: Sequence[str], count_tokens: CountTokens, max_tokens: int) -> list[list[str]]:
    """Pack consecutive sentences into chunks whose summed token counts fit `max_tokens`.

    `count_tokens` is called once with all the sentences. A sentence is split only when it
    alone is over the limit: at word boundaries (characters, for text without spaces) into
    pieces that fit, each re-counted through `count_tokens`. Order is kept; every sentence
    (or all its pieces) lands in exactly one chunk.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1 (got {max_tokens})")
    sentences = list(sentences)
    if not sentences:
        return []
    counts = _checked_counts(count_tokens, sentences)

    units: list[tuple[str, int]] = []
    for sentence, n in zip(sentences, counts):
        if n <= max_tokens:
            units.append((sentence, n))
        else:
            units.extend(_split_long(sentence, n, count_tokens, max_tokens))

    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for text, n in units:
        if current and used + n > max_tokens:
            chunks.append(current)
            current, used = [], 0
        current.append(text)
        used += n
    if current:
        chunks.append(current)
    return chunks


def _checked_counts(count_tokens: CountTokens, texts: Sequence[str]) -> list[int]:
    counts = list(count_tokens(texts))
    if len(counts) != len(texts):
        raise ValueError(f"count_tokens returned {len(counts)} counts for {len(texts)} texts")
    return [int(c) for c in counts]


def _atoms(text: str) -> tuple[list[str], str]:
    """The pieces a too-long sentence may be cut into, and the string that re-joins them."""
    words = text.split()
    if len(words) > 1:
        return words, " "
    return list(text.strip()), ""


def _split_long(sentence: str, n_tokens: int, count_tokens: CountTokens, max_tokens: int) -> list[tuple[str, int]]:
    """Cut one over-long sentence into (piece, tokens) that each fit, in order.

    Each round cuts every piece still over the limit into near-equal parts, as many as it is
    times over the limit (at least two), and re-counts all the new parts in one call. A
    single word over the limit on its own is cut into characters; a single character is
    kept whole, since no cut can make it smaller. Adjacent pieces are packed together again
    by `pack_chunks` when their counts allow.
    """
    atoms, sep = _atoms(sentence)
    pieces: list[tuple[list[str], str, int | None]] = [(atoms, sep, n_tokens)]
    while True:
        cut: list[tuple[list[str], str, int | None]] = []
        for atoms, sep, n in pieces:
            assert n is not None
            if n <= max_tokens or (len(atoms) == 1 and len(atoms[0]) <= 1):
                cut.append((atoms, sep, n))
                continue
            if len(atoms) == 1:  # one word over the limit: cut it into characters
                atoms, sep = list(atoms[0]), ""
            parts = min(len(atoms), max(2, math.ceil(n / max_tokens)))
            size = math.ceil(len(atoms) / parts)
            cut.extend((atoms[i : i + size], sep, None) for i in range(0, len(atoms), size))
        uncounted = [sep.join(atoms) for atoms, sep, n in cut if n is None]
        if not uncounted:
            return [(sep.join(atoms), n) for atoms, sep, n in cut]  # type: ignore[misc]
        counts = iter(_checked_counts(count_tokens, uncounted))
        pieces = [(atoms, sep, next(counts) if n is None else n) for atoms, sep, n in cut]
