"""Reading HTML: a whole page or a CMS body fragment → the article's blocks and metadata.

* A whole page (it has `<html>`, `<head>` or `<body>`) is read by trafilatura (lxml
  underneath), the extractor that leads the public article-extraction benchmarks, in its
  precision mode (measured best on the benchmark's development split, BENCHMARKS.md). Its
  body keeps structure: headings, paragraphs, quotes, list items and table rows come out as
  typed `Block`s. Title, author, date, canonical URL and site name come from its metadata
  reader, the declared language from `<html lang>` / `content-language`.
* A fragment (what a CMS holds: `<p>`s, `<h2>`s, lists) is all article: every block is kept
  and the cleaner decides what is chrome. A fragment runs through the same block walker.
* A body split over several containers (an ad slot or a newsletter box between two `<div>`s
  of story) is often read half by the extractor. jusText, run on the whole page, gives a
  second opinion: its story paragraphs that sit at the same place in the page's tree as most
  of what the extractor kept (same element path) and that the extractor left out are added
  in page order, and so are the quotes inside that story's containers (embedded posts the
  extractor drops as link lists) (`_rejoin_split_body`; measured in BENCHMARKS.md).
* Whatever lxml cannot read whole (nesting deeper than libxml2's limit of 256 levels cuts
  the tree short; a page whose text the extractor misses) falls back to `strip_tags`, a
  linear scan that keeps every visible character and drops scripts, styles and comments.

No tag and no entity survives: text comes out of lxml decoded, and `scrub_markup` removes
whatever markup was escaped inside the page itself (`&lt;b&gt;` shown as text).
"""

from __future__ import annotations

import codecs
import html as html_lib
import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from lxml import etree
from lxml import html as lxml_html

PARAGRAPH, HEADING, QUOTE, ITEM = "paragraph", "heading", "quote", "item"

# A fragment's text (or the extractor's) shorter than this share of the page's visible text
# means lxml lost part of the tree (deep nesting): the linear stripper reads it instead.
_MIN_TEXT_SHARE = 0.5


@dataclass(frozen=True)
class Block:
    """One unit of the article body, in page order."""

    kind: str  # PARAGRAPH | HEADING | QUOTE | ITEM
    text: str


@dataclass(frozen=True)
class Extracted:
    """What the HTML reader found. `blocks` is the body; the rest is metadata (None if absent)."""

    blocks: tuple[Block, ...]
    title: str | None = None
    author: str | None = None
    date: str | None = None  # as the page states it, ISO 8601 (YYYY-MM-DD) from trafilatura
    url: str | None = None  # the canonical URL the page declares
    site: str | None = None
    lang: str | None = None  # the page's declared language: a hint, detection decides
    description: str | None = None
    method: str = "page"  # "page" (extractor) | "fragment" | "stripped" (fallback scan)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)

    def metadata(self) -> dict[str, str]:
        """The metadata that was found, for storing and showing beside the body."""
        data = asdict(self)
        data.pop("blocks")
        return {k: v for k, v in data.items() if v}


# --------------------------------------------------------------------------------------
# Detection and decoding
# --------------------------------------------------------------------------------------

_DOCUMENT_TAG = re.compile(r"<\s*(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE)
_HTML_TAG = re.compile(
    r"</?\s*(?:p|div|br|span|a|h[1-6]|ul|ol|li|table|tr|td|strong|em|b|i|u|img|figure|figcaption|"
    r"blockquote|article|section|header|footer|nav|aside|main|script|style|iframe|meta|link|"
    r"html|head|body|title|font|center|small|sup|sub|hr|pre|code|time|picture|source|noscript)\b[^<>]{0,2000}>",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});")


def looks_like_html(text: str) -> bool:
    """Whether `text` is markup rather than prose: a document tag, or at least two HTML tags
    (one `<` in a sentence, "a < b", is prose)."""
    if "<" not in text:
        return False
    if _DOCUMENT_TAG.search(text[:10_000]):
        return True
    return sum(1 for _ in zip(range(2), _HTML_TAG.finditer(text))) >= 2


_META_CHARSET = re.compile(rb"""<meta[^>]{0,500}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]{2,40})""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_html(data: bytes) -> str:
    """Bytes of a page → text: a byte-order mark, else the page's `<meta charset>` (or
    `http-equiv` content type), else UTF-8, else trafilatura's guess; never raises."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    m = _META_CHARSET.search(data[:16_384])
    if m:
        try:
            codec = codecs.lookup(m.group(1).decode("ascii"))
        except LookupError:
            codec = None
        # a page saying "utf-16" in an ASCII-compatible meta tag is lying about itself
        if codec is not None and not codec.name.startswith("utf-16"):
            return data.decode(codec.name, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        from trafilatura.utils import decode_file

        return decode_file(data)


# --------------------------------------------------------------------------------------
# Markup scrubbing and the linear fallback
# --------------------------------------------------------------------------------------

# every repetition bounded: on text full of "<!--" or "<a" with nothing closing them, each
# match attempt reads a bounded stretch, so scrubbing stays linear
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]{0,30}(?:\s[^<>]{0,2000})?/?>|<!--.{0,2000}?-->|<![A-Za-z][^<>]{0,200}>", re.DOTALL)


def scrub_markup(text: str) -> str:
    """Entities decoded (twice, for `&amp;amp;`) and tag-shaped runs removed: nothing that
    looks like `<tag>` or `&entity;` is left, whatever the page escaped into its text."""
    for _ in range(2):
        if "&" not in text:
            break
        text = html_lib.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    # an entity left standing after two rounds (`&amp;amp;amp;`) goes as well
    return _ENTITY.sub(" ", text) if "&" in text else text


_INVISIBLE_ELEMENTS = ("script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object")
_BLOCK_TAGS = frozenset(
    """address article aside blockquote body br dd details dialog div dl dt fieldset figcaption figure
    footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table td th tr ul
    title caption""".split()
)
_NAME = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9]*)")


def strip_tags(page: str) -> str:
    """Visible text of `page`, one line per block element, in one linear pass.

    Not a parser: it never builds a tree, so no nesting depth or broken markup can stop it.
    Invisible elements (script, style, head, ...) are skipped to their closing tag, or to
    the end of the page when it is missing.
    """
    out: list[str] = []
    lower = page.lower()
    i, n = 0, len(page)
    while i < n:
        lt = page.find("<", i)
        if lt < 0:
            out.append(page[i:])
            break
        out.append(page[i:lt])
        if lower.startswith("<!--", lt):
            end = page.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        gt = page.find(">", lt + 1)
        nxt = page.find("<", lt + 1)
        if gt < 0 or (0 <= nxt < gt):  # a lone "<" in text
            out.append("<")
            i = lt + 1
            continue
        m = _NAME.match(page, lt, gt + 1)
        i = gt + 1
        if not m:
            continue
        name = m.group(1).lower()
        if name in _INVISIBLE_ELEMENTS and not page.startswith("</", lt):
            close = lower.find(f"</{name}", i)
            i = n if close < 0 else (lower.find(">", close) + 1 or n)
            continue
        if name in _BLOCK_TAGS:
            out.append("\n")
    text = html_lib.unescape("".join(out))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------------------
# Block walker (lxml trees: a fragment, or trafilatura's body)
# --------------------------------------------------------------------------------------

# HTML and trafilatura's own tags → the block kind they start.
_KIND_OF = {
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6", "head"), HEADING),
    **dict.fromkeys(("blockquote", "quote", "q_block"), QUOTE),
    **dict.fromkeys(("li", "item", "dt", "dd"), ITEM),
    **dict.fromkeys(
        ("p", "div", "pre", "code", "tr", "row", "table", "figcaption", "figure", "section", "article",
         "main", "body", "ul", "ol", "list", "dl", "address", "header", "footer", "aside", "nav",
         "caption", "details", "summary", "form", "fieldset"),
        PARAGRAPH,
    ),
}
_BREAKS = frozenset(("br", "lb", "hr"))
_SPACED = frozenset(("cell", "td", "th"))  # inline, but never run into the next one
# What a reader never sees. ("head" is not among them: in trafilatura's trees it is a heading,
# and a page's own <head> never reaches the walker: pages go through the extractor.)
_SKIP = frozenset(_INVISIBLE_ELEMENTS) - {"head"} | {"graphic", "img", "button", "select", "input", "textarea"}


def blocks_from_tree(root: Any) -> tuple[Block, ...]:
    """Blocks of an lxml tree in document order, iteratively (no recursion on deep trees).

    A block is the text between block boundaries; its kind is the innermost block element
    around it, except that everything inside a quote is quote and inside a heading heading.
    """
    blocks: list[Block] = []
    buffer: list[str] = []
    kinds: list[str | None] = []  # stack, one entry per open element (None: inline)
    skipping = 0

    def current_kind() -> str:
        if QUOTE in kinds:
            return QUOTE
        if HEADING in kinds:
            return HEADING
        for kind in reversed(kinds):
            if kind:
                return kind
        return PARAGRAPH

    def flush() -> None:
        text = " ".join("".join(buffer).split())
        buffer.clear()
        if text:
            blocks.append(Block(current_kind(), text))

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""  # comments, processing instructions
        tag = tag.rsplit("}", 1)[-1].lower()
        if event == "start":
            if skipping or tag in _SKIP or not tag:
                skipping += 1
                continue
            kind = _KIND_OF.get(tag)
            if kind or tag in _BREAKS:
                flush()
            kinds.append(kind)
            if tag in _SPACED:
                buffer.append(" ")
            if el.text:
                buffer.append(el.text)
        else:
            if skipping:
                skipping -= 1
            else:
                kind = kinds[-1] if kinds else None
                if kind or tag in _BREAKS:
                    flush()
                if kinds:
                    kinds.pop()
                if tag in _SPACED:
                    buffer.append(" ")
            if el.tail and not skipping:
                buffer.append(el.tail)
    flush()
    return tuple(blocks)


def _visible_length(page: str) -> int:
    return len("".join(strip_tags(page).split()))


def _blocks_length(blocks: Iterable[Block]) -> int:
    return sum(len("".join(b.text.split())) for b in blocks)


def _stripped(page: str) -> tuple[Block, ...]:
    return tuple(Block(PARAGRAPH, line) for line in strip_tags(page).split("\n"))


def _scrubbed(blocks: Iterable[Block]) -> tuple[Block, ...]:
    out = []
    for b in blocks:
        text = " ".join(scrub_markup(b.text).split())
        if text:
            out.append(Block(b.kind, text))
    return tuple(out)


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

_LANG_ATTR = re.compile(
    r"""<html\b[^>]{0,500}?\blang\s*=\s*["']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)?|"""
    r"""<meta[^>]{0,300}?http-equiv\s*=\s*["']?content-language["']?[^>]{0,100}?content\s*=\s*["']?([A-Za-z]{2,3})""",
    re.IGNORECASE,
)


def _declared_lang(page: str) -> str | None:
    m = _LANG_ATTR.search(page[:20_000])
    return (m.group(1) or m.group(2)).lower() if m else None


def _clean_meta(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(scrub_markup(value).split())
    return value or None


def extract_html(page: str | bytes, url: str | None = None) -> Extracted:
    """Read an HTML page or fragment into blocks and metadata; never raises on bad markup."""
    if isinstance(page, bytes):
        page = decode_html(page)
    page = page.replace("\0", "")
    if not _DOCUMENT_TAG.search(page[:10_000]):
        return _extract_fragment(page)
    try:
        return _extract_page(page, url)
    except (RecursionError, ValueError, etree.LxmlError):
        # lxml and trafilatura give up on some broken pages; every visible line is still there
        return Extracted(blocks=_scrubbed(_stripped(page)), lang=_declared_lang(page), method="stripped")


def _extract_fragment(page: str) -> Extracted:
    try:
        root = lxml_html.fragment_fromstring(page, create_parent="div")
        blocks = _scrubbed(blocks_from_tree(root))
    except (ValueError, etree.LxmlError, RecursionError):
        blocks = ()
    if _blocks_length(blocks) < _MIN_TEXT_SHARE * _visible_length(page):
        return Extracted(blocks=_scrubbed(_stripped(page)), method="stripped")
    return Extracted(blocks=blocks, method="fragment")


# --------------------------------------------------------------------------------------
# The second opinion: the rest of a body split over several containers
# --------------------------------------------------------------------------------------

_WORDS = re.compile(r"\w+")
_COVERED_SHARE = 0.5  # a paragraph whose word trigrams are this much in the body is already there
_STORY_PATH_SHARE = 0.2  # an element path holding this share of the kept words is a story path
_MIN_OUTSIDE_RUN = 2  # before or after the kept story, only runs of paragraphs (not one bio line)
_PLACE_WINDOW = 64  # blocks searched ahead for where a kept paragraph is (bounded: linear overall)
# jusText's neighbour revision walks runs of short paragraphs (quadratic on a page of thousands);
# the 181 pages of the benchmark have at most 948 block tags, so past this the extractor's body stands
_SECOND_OPINION_MAX_BLOCK_TAGS = 3_000
_BLOCK_TAG = re.compile(r"<(?:p|div|br|li|h[1-6]|td|tr|blockquote|section|article|dd|dt|pre|table|ul|ol|form|hr)\b", re.IGNORECASE)


def _word_key(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _trigrams(words: list[str]) -> list[tuple[str, str, str]]:
    return list(zip(words, words[1:], words[2:]))


def _rejoin_split_body(page: str, blocks: tuple[Block, ...]) -> tuple[Block, ...]:
    """`blocks` with jusText's story paragraphs added that share the element path of the
    story the extractor kept and that it left out: the rest of a body split over containers.

    Added, when not already in the body (word trigrams): paragraphs jusText calls good under
    an element path that holds at least `_STORY_PATH_SHARE` of the words of paragraphs the
    extractor kept whole, and quotes inside those paths' containers (embedded posts, which
    jusText calls bad for their links and the extractor drops), as `QUOTE` blocks; each
    either between two kept paragraphs or in a run of at least `_MIN_OUTSIDE_RUN` before or
    after them. Each goes after the block holding the kept paragraph before it. On a page of
    more than `_SECOND_OPINION_MAX_BLOCK_TAGS` block tags, or any failure of jusText, the
    extractor's blocks stand.
    """
    import justext

    if sum(1 for _ in zip(range(_SECOND_OPINION_MAX_BLOCK_TAGS + 1), _BLOCK_TAG.finditer(page))) > _SECOND_OPINION_MAX_BLOCK_TAGS:
        return blocks
    try:
        paragraphs = justext.justext(page.encode("utf-8"), _all_stopwords(), encoding="utf-8")
    except Exception:  # jusText's parser on a page lxml half-reads: the extractor's body stands
        return blocks
    block_keys = [_word_key(b.text) for b in blocks]
    known = {g for key in block_keys for g in _trigrams(key.split())}
    known_words = {w for key in block_keys for w in key.split()}

    def share_in_body(key: str) -> float:  # set look-ups only: linear in the page
        words = key.split()
        grams = _trigrams(words)
        if not grams:
            return float(all(w in known_words for w in words))
        return sum(g in known for g in grams) / len(grams)

    def covered(key: str) -> bool:
        return share_in_body(key) >= _COVERED_SHARE

    items = [(p, key) for p in paragraphs if (key := _word_key(p.text))]
    is_covered = [covered(key) for _, key in items]
    path_words: dict[str, int] = {}
    for (p, key), cov in zip(items, is_covered):
        if cov and not p.is_heading and share_in_body(key) == 1.0:  # kept whole
            path_words[p.dom_path] = path_words.get(p.dom_path, 0) + len(key.split())
    total = sum(path_words.values())
    if not total:
        return blocks
    story_paths = {path for path, n in path_words.items() if n >= _STORY_PATH_SHARE * total}
    # the kept story spans from its first to its last paragraph on a story path (a share
    # button's word elsewhere on the page is "in the body" too, but no bound of the story)
    kept = [i for i, ((p, _), cov) in enumerate(zip(items, is_covered)) if cov and p.dom_path in story_paths]
    if not kept:  # the kept words spread over many paths: no story path to follow
        return blocks
    first, last = kept[0], kept[-1]
    containers = {path.rsplit(".", 1)[0] + "." for path in story_paths}

    def quoted_in_story(path: str) -> bool:
        return ".blockquote" in path and any(path.startswith(c) for c in containers)

    wanted = [not cov and ((p.class_type == "good" and p.dom_path in story_paths) or quoted_in_story(p.dom_path))
              for (p, _), cov in zip(items, is_covered)]
    i = 0
    while i < len(wanted):  # outside the kept story, a lone paragraph (an author's bio) stays out
        if wanted[i] and not first < i < last:
            j = i
            while j < len(wanted) and wanted[j]:
                j += 1
            if j - i < _MIN_OUTSIDE_RUN:
                wanted[i:j] = [False] * (j - i)
            i = j
        else:
            i += 1
    if not any(wanted):
        return blocks

    def block_of(key: str, start: int) -> int:
        """The block holding the kept paragraph `key`, searched from `start` on (page order)."""
        window = range(max(start, 0), min(len(block_keys), max(start, 0) + _PLACE_WINDOW))
        for b in window:
            if key[:60] in block_keys[b]:
                return b
        for b in reversed(window):  # jusText joined a heading and its paragraph
            if len(block_keys[b]) >= 20 and block_keys[b] in key:
                return b
        return start

    added: dict[int, list[Block]] = {}  # after block index (-1: before the first) → new blocks
    after = -1
    for (p, key), cov, want in zip(items, is_covered, wanted):
        if cov:
            after = block_of(key, after)
        elif want:
            kind = HEADING if p.is_heading else QUOTE if ".blockquote" in p.dom_path else PARAGRAPH
            added.setdefault(after, []).append(Block(kind, " ".join(p.text.split())))
    out = list(added.get(-1, ()))
    for b, block in enumerate(blocks):
        out.append(block)
        out.extend(added.get(b, ()))
    return _scrubbed(out)


_STOPWORDS: frozenset[str] | None = None


def _all_stopwords() -> frozenset[str]:
    """Every jusText stoplist at once: a page's language is not known yet (as trafilatura's
    own jusText fallback does)."""
    global _STOPWORDS
    if _STOPWORDS is None:
        import justext

        _STOPWORDS = frozenset(w for lang in justext.get_stoplists() for w in justext.get_stoplist(lang))
    return _STOPWORDS


def _extract_page(page: str, url: str | None) -> Extracted:
    import trafilatura

    doc = trafilatura.bare_extraction(
        page, url=url, with_metadata=True, include_comments=False, favor_precision=True, include_tables=True
    )
    blocks = _scrubbed(blocks_from_tree(doc.body)) if doc is not None and doc.body is not None else ()
    if blocks:
        blocks = _rejoin_split_body(page, blocks)
    lang = _declared_lang(page)
    if not blocks:
        # Nothing the extractor would call an article: a page cut short by deep nesting, a
        # bare page of paragraphs. The visible lines go to the cleaner, which judges them.
        stripped = _scrubbed(_stripped(page))
        title = _clean_meta(doc.title) if doc is not None else None
        return Extracted(blocks=stripped, title=title, lang=lang, method="stripped")
    return Extracted(
        blocks=blocks,
        title=_clean_meta(doc.title),
        author=_clean_meta(doc.author),
        date=_clean_meta(doc.date),
        url=_clean_meta(doc.url),
        site=_clean_meta(doc.sitename),
        lang=lang,
        description=_clean_meta(doc.description),
        method="page",
    )
