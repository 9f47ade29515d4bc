"""Cleaning (docs/contracts.md): a news page → the story, every sentence once, its structure kept.

`clean_input` is the entry point: HTML (the `html` field, or markup pasted into `text`) is read
by `pipeline/extract.py` first; plain text goes to `clean_article`. Both end in `clean_blocks`.

**Plain text: a paragraph classifier in jusText's manner** (`classify_blocks`), so pages from
sites never seen, in languages without any table, are cleaned by general signals:

1. context-free, per paragraph: chrome by its *shape* in any language (dates and clocks with
   few other words, time zones, digits-only debris such as "150 150 admin", "Label: 3 min",
   copyright lines, "Name / AGENCY" credits, bracketed notes) or by the *phrase tables*
   below, consulted only for short lines (`_PARAGRAPH_RULES`); then length (under
   `SHORT_WORDS` words a line is too short to judge alone, like a line without a terminal
   mark under `LONG_WORDS`), and stopword density from jusText's stoplists (~100 languages;
   sentence shape alone where there is none, e.g. Chinese, Japanese) → good / near-good /
   short / bad; a short line repeated on the page is the site's;
2. context, in linear passes: a near-good paragraph is story beside story or inside the
   story's span (first to last good paragraph), chrome alone; chrome caught by shape or table
   says nothing of its neighbours (ads and captions sit inside stories); a short sentence
   inside the span or beside story is story, unless it is a question at the story's edge (a
   reader poll) or one line of a box of widget lines; the last short unpunctuated line before
   story, inside the span, is a **subheading** (kept as structure: `Cleaned.blocks`,
   `headings`, `document`; never a story sentence, so a summary never quotes one); a list item
   inside the span is kept; what is left is chrome. A page with no paragraph good by itself
   (a brief) keeps what reads as prose, and short lines when nothing does.

**Extractor output** (`structured`): the extractor already chose the body; only the rules that
measured better on it run (`EXTRACTED_RULES`, BENCHMARKS.md "Reading articles"), plus teaser
heading runs and closing credit lines.

What is repaired inside the story (no word is rewritten; only marks and repeats go):

* punctuation debris, see `_DEBRIS` ("said. , director" → "said, director", "invasion. ."
  → "invasion.", "assured him. that" → "assured him that", "war. war in" → "war in") and
  a closing quote that closes nothing ("harmony.” more reasonable”" → "harmony more
  reasonable”");
* copy-paste repeats (plain text): a sentence that repeats one already kept, or a stretch of
  the sentence just before it ("... said Hal Brands, professor of X. Brands, professor of
  X."), and a paragraph pasted twice;
* a trailing agency attribution in brackets ("... (AFP)", "(Theo TTXVN)") is removed and the
  paragraph kept.

The phrase tables (en/fr/de/es/vi, some pt) are the last resort: vocabulary of chrome the
shapes cannot tell from a sentence ("Comments are closed.", newsletter prompts).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

from pipeline.extract import (
    HEADING, ITEM, PARAGRAPH, QUOTE, Block, Extracted, extract_html, looks_like_html, scrub_markup,
)
from pipeline.segment import NO_SPACE_CHARS, ends_sentence, split_paragraphs, starts_lower


@dataclass(frozen=True)
class Cleaned:
    title: str | None
    text: str  # the story paragraphs (subheadings not among them), separated by blank lines
    paragraphs: list[str]
    # Every kept block in page order, subheadings included: the article's structure.
    blocks: tuple[Block, ...] = ()
    # (reason, paragraph) for each paragraph removed, in page order: for `--debug` views and tests.
    dropped: list[tuple[str, str]] = field(default_factory=list, repr=False, compare=False)
    # What the HTML reader found (metadata, method), for HTML input.
    extracted: Extracted | None = field(default=None, repr=False, compare=False)

    @property
    def headings(self) -> list[str]:
        return [b.text for b in self.blocks if b.kind == HEADING]

    @property
    def document(self) -> str:
        """The body with its structure, in light Markdown: `## ` subheadings, `> ` quotes,
        `- ` list items, blank lines between blocks; for HTML, the page's metadata first as
        front matter (`---` / `key: value` lines / `---`). What is stored and the review page
        shows: the store keeps the metadata with the body, no column of its own."""
        body = "\n\n".join(_MARKS.get(b.kind, "") + b.text for b in self.blocks)
        meta = self.extracted.metadata() if self.extracted is not None else {}
        if not meta:
            return body
        front = "\n".join(f"{key}: {' '.join(value.split())}" for key, value in meta.items())
        return f"{FRONT_MATTER}\n{front}\n{FRONT_MATTER}\n\n{body}"


SHORT_LINE_MAX_WORDS = 30  # chrome rules that read vocabulary only look at lines this short
CONTACT_MAX_CHARS = 300  # a contact header is a line, not a paragraph
CAPTION_MAX_WORDS = 60  # a longer paragraph ending in a credit is story with a credit attached


_MARKS = {HEADING: "## ", QUOTE: "> ", ITEM: "- "}


FRONT_MATTER = "---"
_META_KEYS = frozenset(("title", "author", "date", "url", "site", "lang", "description", "method"))


def read_document(document: str | None) -> tuple[dict[str, str], list[Block]]:
    """A stored body (`Cleaned.document`) read back: its metadata and its blocks, for showing
    it with its structure; a body stored before either was kept reads as paragraphs."""
    document = document or ""
    meta: dict[str, str] = {}
    if document.startswith(FRONT_MATTER + "\n"):
        head, sep, rest = document[len(FRONT_MATTER) + 1:].partition(f"\n{FRONT_MATTER}\n")
        pairs = [line.partition(": ") for line in head.split("\n")]
        if sep and all(key in _META_KEYS and colon for key, colon, _ in pairs):
            meta = {key: value for key, _, value in pairs}
            document = rest
    blocks = []
    for part in document.split("\n\n"):
        part = part.strip()
        if not part:
            continue
        kind = next((k for k, mark in _MARKS.items() if part.startswith(mark)), PARAGRAPH)
        text = part[len(_MARKS[kind]):] if kind != PARAGRAPH else part
        blocks.append(Block(kind, " ".join(text.split())))
    return meta, blocks


# --------------------------------------------------------------------------------------
# Vocabulary tables. Lower case; each entry is a regular expression fragment.
# --------------------------------------------------------------------------------------

# A line that is nothing but one of these (ignoring a count, a colon, arrows or bullets).
CHROME_LINES = [
    # en
    r"source( link)?", r"sources", r"related( articles| stories| news| posts)?", r"read (more|also|next)",
    r"see also", r"back to top( button)?", r"advertisement", r"sponsored( content)?",
    r"share( this( article| story| post)?)?", r"share (on|via) \w+", r"print( this article)?", r"comments?",
    r"most (read|popular|viewed)", r"trending( now)?", r"you (may|might) also like", r"recommended( for you)?",
    r"skip to (main )?content", r"click to (enlarge|expand)", r"listen to this (article|story)",
    r"(show|view|load) (more|comments)", r"more from [\w ]+", r"follow us",
    # fr
    r"publicité", r"partager( cet article| sur \w+)?", r"(à )?lire (aussi|également|la suite)", r"(à )?voir aussi",
    r"sur le même (sujet|thème)", r"commentaires?", r"réagir", r"retour en haut( de (la )?page)?",
    r"articles? similaires", r"les plus lus", r"contenu sponsorisé", r"écouter cet article", r"suivez-nous",
    # de
    r"anzeige", r"werbung", r"weitere artikel( aus diesem ressort)?", r"mehr zum thema",
    r"(lesen sie|lesen) (auch|mehr)",
    r"auch interessant", r"kommentare?", r"(artikel )?teilen", r"drucken", r"nach oben", r"zum seitenanfang",
    r"meistgelesen", r"empfehlungen", r"das könnte sie auch interessieren",
    # es
    r"publicidad", r"compartir( en \w+| este artículo| esta noticia)?", r"lee (también|más)", r"leer más",
    r"te puede interesar", r"(noticias|artículos) relacionad[oa]s", r"comentarios?", r"volver arriba",
    r"lo más leído", r"más leídas", r"contenido patrocinado", r"síguenos",
    # vi
    r"quảng cáo", r"tin liên quan", r"bài liên quan", r"xem thêm", r"chia sẻ", r"bình luận", r"đọc thêm",
    r"tin cùng chuyên mục", r"(về|lên) đầu trang", r"tin mới nhất", r"tin nổi bật", r"in bài", r"đọc tiếp",
]

# "<one of these>: <anything>" points elsewhere (a teaser, a tag list, a source line).
TEASER_PREFIXES = [
    r"read (more|also|next)", r"see (also|more)", r"related( posts?| stories| articles)?", r"tags?", r"topics?",
    r"sources?", r"more on this", r"filed under",
    r"(à )?lire (aussi|également)", r"(à )?voir aussi", r"mots[- ]clés", r"thèmes?", r"sur le même sujet",
    r"lesen sie (auch|mehr)", r"mehr zum thema", r"auch interessant", r"schlagw(o|ö)rte?", r"themen", r"quellen?",
    r"lee (también|más)", r"te puede interesar", r"ver también", r"etiquetas", r"temas", r"fuentes?",
    r"xem thêm", r"đọc thêm", r"tin liên quan", r"từ khóa", r"nguồn",
]

# Calls to action addressed to the reader, matched at the start of a line.
CALLS_TO_ACTION = [
    r"(sign up|subscribe|register)\b.*\b(newsletter|inbox|alerts|updates|briefing)",
    r"follow us\b", r"(download|get) (our|the) app\b", r"(join|get) our\b.*\bnewsletter", r"like us on\b",
    r"follow\b.{0,80}\bon (facebook|twitter|instagram|youtube|linkedin|tiktok)\b", r"get the latest\b.*\b(inbox|newsletter)",
    r"like this (story|article)\?", r"(share|send) (it|this( story| article)?) with a friend",
    r"receba (em seu|no seu) e-?mail", r"siga-nos\b", r"assine (a|nossa) newsletter",
    r"(abonnez|inscrivez)-vous\b", r"suivez-nous\b", r"téléchargez (notre|l['’])appli",
    r"(abonnieren|bestellen) sie\b", r"melden sie sich\b.*\bnewsletter", r"folgen sie uns\b", r"jetzt\b.*\bnewsletter",
    r"(suscríbete|suscríbase|regístrate|apúntate)\b", r"síguenos\b", r"descarga (nuestra|la) app",
    r"đăng ký\b.*\b(nhận tin|bản tin)", r"theo dõi\b.*\b(trên|tại) (facebook|zalo|youtube|tiktok|google news)",
    r"mời (quý )?(bạn|độc giả) (đọc|xem|theo dõi)",
]
# ... or anywhere in a short line: the site's own newsletter or app.
OWN_PRODUCTS = (
    r"\b(our|notre|nos|unseren?|nuestro|nuestra|nuestros)\b( \w+){0,2} "
    r"(newsletters?|lettre d['’]information|app|application|boletín|boletines)\b"
)

COMMENT_NOTICES = [
    # en
    r"comments? (are|is) (now )?(closed|disabled)", r"(leave|post|add|write) a (comment|reply)",
    r"join the (conversation|discussion)", r"^\d+ comments?$", r"(show|view|hide) comments",
    # fr
    r"commentaires? (sont|est) (fermés?|désactivés?)", r"(laisser|ajouter|écrire) un commentaire",
    r"^\d+ commentaires?$", r"(afficher|voir) les commentaires",
    # de
    r"kommentarfunktion", r"^\d+ kommentare?$", r"kommentare (anzeigen|lesen|ausblenden|einblenden)",
    r"diskutieren sie mit",
    # es
    r"comentarios? (están|está) (cerrados?|desactivados?)", r"(deja|escribe|añade) (un|tu) comentario",
    r"^\d+ comentarios?$", r"(ver|mostrar) (los )?comentarios",
    # vi
    r"(gửi|viết) bình luận", r"ý kiến bạn đọc", r"^\d+ bình luận$", r"bình luận (của bạn|đã bị khóa)",
]

# Slogans of news sites; a paragraph with three or more of these is a site promo.
PROMO_TERMS = [
    r"breaking news", r"latest news", r"news online", r"hot news", r"mainstream news", r"24/7", r"24h",
    r"video clips?", r"updated? (quickly|daily|24/7)", r"news of the day",
    r"dernières actualités", r"actualités? en (continu|direct)", r"toute l['’]actualité",
    r"aktuelle nachrichten", r"eilmeldungen", r"nachrichten (aus|des tages)",
    r"últimas noticias", r"noticias de última hora", r"noticias (de|del) día",
    r"tin tức", r"tin nóng", r"tin mới", r"cập nhật (liên tục|nhanh)",
]
PROMO_MIN_HITS = 3

# Photo captions end with a credit or an image marker. Case-insensitive shapes:
CAPTION_ENDINGS = [
    # "(File)", "(File photo)", "(Archives)", "(Symbolbild)", "(Ảnh minh họa)"
    r"\((file( photo)?|files|archives?|representational image|representative image|illustration"
    r"|photo d['’]archives?|archivbild|archivfoto|symbolbild|foto de archivo|imagen de archivo"
    r"|ảnh minh họa|ảnh tư liệu)\)",
    # "(Photo: AFP)", "(Foto: dpa)", "(Ảnh: TTXVN)"
    r"\((photos?|fotos?|bild|imagen|ảnh|crédits?|credits?|picture)\b[^()]{0,80}\)",
    # "Photo: AFP", "Foto: Michael Kappeler/dpa", "Crédit photo : Name", "Ảnh: Minh Anh"
    r"(^|[.!?]\s|\s[-–—|]\s?|\s)"
    r"(photos?|fotos?|bild|imagen|ảnh|crédits?( photo)?|credits?|photograph)\s?:\s?[^.!?:]{1,80}",
    # "Photo by Name/Getty Images"
    r"\b(photo|picture) by [^.!?]{1,80}",
    # Vietnamese image markers: "- Ảnh 1", "– Ảnh 2"
    r"[-–—]\s*ảnh\s*\d+",
    # "© AFP", "©Reuters 2024"
    r"©\s*\S[^.!?]{0,60}",
]
# Case-sensitive shapes: agency and photographer in capitals.
CAPTION_ENDINGS_CASED = [
    # "REUTERS/Benoit Tessier", "EFE/Manuel Bruque", "AFP/Getty Images", "dpa/Kay Nietfeld"
    r"\b(?:[A-Z]{2,}|dpa|Reuters|Getty Images)\s?/\s?[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3}",
    # "JEFF PACHOUD / AFP", "LUDOVIC MARIN / POOL / AFP"
    r"\b[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’.-]+(?:\s+[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’.-]+)*\s?/\s?[A-Z][A-Za-z]+(?:\s?/\s?[A-Z][A-Za-z]+)?",
]

# Agencies whose name, alone in brackets at the end of a paragraph, is an attribution.
AGENCIES = (
    r"AFP|AP|Reuters|REUTERS|dpa|DPA|EFE|TTXVN|VNA|Xinhua|ANSA|Kyodo|Yonhap|PTI|IANS|ANI|TASS|Bloomberg|"
    r"KNA|epd|Europa Press"
)
_ATTRIBUTION = re.compile(
    rf"\s*\((?:(?:theo|avec|with|mit|con|según|nguồn|source|quelle|fuente)\s*:?\s*)?"
    rf"(?:{AGENCIES})(?:\s*[,/]\s*(?:{AGENCIES}))*\)\s*$",
    re.IGNORECASE,
)

CONTACT_LABELS = (
    r"hotline|đường dây nóng|điện thoại|đt|tel|tél|téléphone|telefon|teléfono|phone|fax|e-?mail|mail|"
    r"liên hệ|contact|kontakt|contacto|tòa soạn|toà soạn|redaktion|rédaction|redacción|website|web|zalo|"
    r"quảng cáo|advertising|werbung|publicité|publicidad"
)
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_PHONE = r"(?<!\w)\+?\(?\d[\d .()/-]{6,}\d(?!\w)"
_URL = r"\b(?:https?://|www\.)\S+"

BYLINE_PREFIXES = (
    r"by|written by|posted by|reporting by|editing by|additional reporting by|"
    r"par|texte|propos recueillis par|von|text|por|redacción|theo|tác giả|bài(,| và) ảnh"
)
TIMESTAMP_PREFIXES = (
    r"published|updated|posted|last updated|first published|publié|mis à jour|veröffentlicht|aktualisiert|stand|"
    r"publicado|actualizado|cập nhật|đăng( lúc| ngày)?|ngày đăng|thứ (hai|ba|tư|năm|sáu|bảy)|chủ nhật"
)
_FULL_DATE_OR_TIME = r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b|\b\d{1,2}[:h]\d{2}\b"  # 12.03.2024, 10:34, 10h32
_DATE_OR_TIME = _FULL_DATE_OR_TIME + r"|\b(19|20)\d{2}\b"  # ... or a year


def _whole(patterns: list[str], flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(r"(?:" + "|".join(patterns) + r")", flags)


_CHROME_LINE = re.compile(
    r"^[\W\d]*(?:" + "|".join(CHROME_LINES) + r")(?:\s*\(?\d+\)?)?[\s:»›>→.…|-]*$", re.IGNORECASE
)
_TEASER = re.compile(r"^[\W]*(?:" + "|".join(TEASER_PREFIXES) + r")\s*[:：»›>→|–—-]\s*\S", re.IGNORECASE)
_CALL_TO_ACTION = re.compile(r"^[\W\d]*(?:" + "|".join(CALLS_TO_ACTION) + r")", re.IGNORECASE)
_OWN_PRODUCT = re.compile(OWN_PRODUCTS, re.IGNORECASE)
_COMMENT_NOTICE = _whole(COMMENT_NOTICES)
_PROMO = _whole(PROMO_TERMS)
_CAPTION = re.compile(r"(?:" + "|".join(CAPTION_ENDINGS) + r")\s*[.)]?\s*$", re.IGNORECASE)
_CAPTION_CASED = re.compile(r"(?:" + "|".join(CAPTION_ENDINGS_CASED) + r")\s*[.)]?\s*$")
_CONTACT_BITS = re.compile(rf"{_EMAIL}|{_URL}|{_PHONE}|\b(?:{CONTACT_LABELS})\b", re.IGNORECASE)
_CONTACT_VALUE = re.compile(rf"{_EMAIL}|{_PHONE}")
_BYLINE = re.compile(rf"^(?:{BYLINE_PREFIXES})\s+[^\W\d_]", re.IGNORECASE)
_TIMESTAMP = re.compile(rf"^(?:{TIMESTAMP_PREFIXES})\b", re.IGNORECASE)
_DATE = re.compile(_DATE_OR_TIME)
_DATE_TIME = re.compile(_FULL_DATE_OR_TIME)
_EDITOR_NOTE_PREFIX = re.compile(
    r"^(editor['’]s note|note de la rédaction|n\.?d\.?l\.?r\.?|anmerkung der redaktion|"
    r"nota (del editor|de la redacción)|ghi chú của tòa soạn)\b",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------------------
# Paragraph rules
# --------------------------------------------------------------------------------------

def word_count(text: str) -> int:
    """Words in `text`; in scripts written without spaces, two characters count as a word."""
    n = 0
    for run in re.findall(r"[^\W\d_]+|\d+", text):
        if NO_SPACE_CHARS.search(run):
            n += (len(run) + 1) // 2
        else:
            n += 1
    return n


def _is_chrome_line(p: str) -> bool:
    n = word_count(p)
    return (n <= 8 and _CHROME_LINE.match(p) is not None) or (n <= 20 and _TEASER.match(p) is not None)


def _is_call_to_action(p: str) -> bool:
    return word_count(p) <= SHORT_LINE_MAX_WORDS and bool(_CALL_TO_ACTION.match(p) or _OWN_PRODUCT.search(p))


def _is_comment_notice(p: str) -> bool:
    return word_count(p) <= SHORT_LINE_MAX_WORDS and bool(_COMMENT_NOTICE.search(p))


def _is_bracketed_note(p: str) -> bool:
    """A paragraph wholly inside one pair of brackets, or one labelled as an editor's note."""
    if _EDITOR_NOTE_PREFIX.match(p):
        return True
    body = p.rstrip(".")
    if len(body) < 2 or (body[0], body[-1]) not in {("(", ")"), ("[", "]")}:
        return False
    depth = 0
    for i, ch in enumerate(body):  # the first bracket must close at the very end
        depth += ch in "(["
        depth -= ch in ")]"
        if depth == 0 and i < len(body) - 1:
            return False
    return True


def _is_promo(p: str) -> bool:
    return len(_PROMO.findall(p)) >= PROMO_MIN_HITS


def _is_caption(p: str) -> bool:
    return word_count(p) <= CAPTION_MAX_WORDS and bool(_CAPTION.search(p) or _CAPTION_CASED.search(p))


def _is_contact(p: str) -> bool:
    """Hotline / phone / e-mail lines: once contact details and labels are gone, ≤ 3 words are left."""
    if len(p) > CONTACT_MAX_CHARS or not ("@" in p or any(ch.isdigit() for ch in p)):
        return False  # (and the e-mail pattern never scans a long run of letters: it is quadratic there)
    p = _DATE_TIME.sub(" ", p)  # "12.03.2024, 10:34" is not a phone number
    if not _CONTACT_VALUE.search(p):
        return False
    return word_count(_CONTACT_BITS.sub(" ", p)) <= 3


def _is_byline_or_timestamp(p: str) -> bool:
    """"By Jane Doe", "Par Jean Dupont (AFP)", "Publié le 12 mars 2024 à 10h32", "12.03.2024, 10:34 Uhr"."""
    n = word_count(p)
    if n > 20 or ends_sentence(p):  # a sentence, not a label
        return False
    if _BYLINE.match(p):
        return n <= 12
    if _TIMESTAMP.match(p):
        return _DATE.search(p) is not None
    return n <= 10 and _DATE.search(p) is not None and _mostly_date(p)


def _mostly_date(p: str) -> bool:
    """A line that is a date and time and little else ("12.03.2024, 10:34 Uhr")."""
    rest = re.sub(_DATE_OR_TIME + r"|\d+", " ", p)
    return word_count(rest) <= 4


# Order matters only for the reason reported: the first rule that matches names it.
_PARAGRAPH_RULES: list[tuple[str, Callable[[str], bool]]] = [
    ("site chrome", _is_chrome_line),
    ("call to action", _is_call_to_action),
    ("comment notice", _is_comment_notice),
    ("editor's note", _is_bracketed_note),
    ("site promo", _is_promo),
    ("photo caption", _is_caption),
    ("contact header", _is_contact),
    ("byline", _is_byline_or_timestamp),
]


def _similarity(a: str, b: str) -> float:
    """Jaccard overlap of word stems (first four letters), for near-duplicate headlines."""
    sa = {w[:4] for w in re.findall(r"\w+", a.casefold())}
    sb = {w[:4] for w in re.findall(r"\w+", b.casefold())}
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def _is_repeated_headline(p: str, title: str | None) -> bool:
    if not title:
        return False
    sim = _similarity(p, title)
    return sim >= 0.9 or (sim >= 0.6 and not ends_sentence(p))


def classify_paragraph(paragraph: str, title: str | None = None, *, shapes: bool = True) -> str | None:
    """Why `paragraph` is chrome by its shape or vocabulary alone, or None. Context (the
    paragraph classifier, `classify_blocks`) decides the rest."""
    for reason, rule in _PARAGRAPH_RULES:  # the specific names first
        if rule(paragraph):
            return reason
    reason = _shape_reason(paragraph, word_count(paragraph)) if shapes else None
    if reason:
        return reason
    if _is_repeated_headline(paragraph, title):
        return "repeated headline"
    return None


# --------------------------------------------------------------------------------------
# Repairs inside story paragraphs
# --------------------------------------------------------------------------------------

# Punctuation left behind by scrapers and machine translation. Applied in order.
_DEBRIS: list[tuple[re.Pattern[str], str]] = [
    # "invasion. ." → "invasion."            a full stop repeated after a space
    (re.compile(r"([.!?…])(?:\s+\.(?!\.))+"), r"\1"),
    # "said. , director" → "said, director"  a full stop left before a comma (".," with no
    # space is an abbreviation: "Washington, D.C., said")
    (re.compile(r"(?<![.\s])\.\s+,"), ","),
    # "loss, ." → "loss."                    a comma left before a full stop
    (re.compile(r",\s*\.(?!\.)"), "."),
    # "a, , b" / "a,, b" → "a, b"
    (re.compile(r",(?:\s*,)+"), ","),
    # "word ." / "word ," → "word." (not before ! ? : ; which French sets off with a space)
    (re.compile(r"(?<=[\w”’»)\]\"])\s+([.,])(?=\s|$)"), r"\1"),
    # "( in Ukraine )" → "(in Ukraine)"
    (re.compile(r"([(\[])\s+"), r"\1"),
    (re.compile(r"\s+([)\]])"), r"\1"),
    (re.compile(r"[ \t]{2,}"), " "),
]

# Words that end in a full stop and may be followed by a lower-case word without a sentence
# break ("etc. and", "bzw. die"). Lower case, without the stop. One-letter words never count
# ("z. B. die", "p. ex. le" are always abbreviations).
_STOP_ABBREVIATIONS = frozenset(
    """
    vs al cf ca ff pp ed eds op jh hg bd dt od ua zb ex ej sr sra dr st
    etc approx incl excl resp min max fig ibid var viz vol esp prof gen gov sen rep sgt col capt
    jan feb mar apr jun jul aug sep sept oct okt nov dec dez
    bzw usw ggf evtl inkl zzgl vgl sog bspw mio mrd tsd str abs art
    aprox pág núm tel env cca
    """.split()
)
# "him. that" – a full stop inside a sentence: a lower-case word follows it.
_STRAY_STOP = re.compile(r"(?<![\w.])(?P<word>[^\W\d_]{2,})\.(?P<space> +)(?=(?P<next>[^\W\d_]+))")


def _drop_stray_stop(m: re.Match[str]) -> str:
    word, nxt = m["word"], m["next"]
    if not starts_lower(nxt) or word.casefold() in _STOP_ABBREVIATIONS or word.isupper():
        return m[0]
    if word.casefold() == nxt.casefold():  # "war. war in Ukraine": the seam of a paste
        return ""
    return word + m["space"]


def _drop_stray_closing_quotes(text: str) -> str:
    """“a b.” c d”. → “a b c d”. — a ” that closes nothing means the ” before it was stray.

    Only for “ ” pairs; German „ “ uses “ as the closing mark, so paragraphs with „ are left
    alone.
    """
    if "„" in text or "”" not in text:
        return text
    drop: set[int] = set()
    is_open, last_close = False, None
    for i, ch in enumerate(text):
        if ch == "“":
            is_open, last_close = True, None
        elif ch == "”":
            if is_open:
                is_open, last_close = False, i
            elif last_close is not None:
                drop.add(last_close)
                if last_close > 0 and text[last_close - 1] in ".,":
                    drop.add(last_close - 1)
                last_close = i
    return "".join(ch for i, ch in enumerate(text) if i not in drop) if drop else text


def repair_punctuation(text: str) -> str:
    """Fix the debris of `_DEBRIS`, stray full stops and stray closing quotes; words are kept."""
    for pattern, replacement in _DEBRIS:
        text = pattern.sub(replacement, text)
    text = _STRAY_STOP.sub(_drop_stray_stop, text)
    text = _drop_stray_closing_quotes(text)
    return text.strip()


# Rough sentence units, only to find copy-paste repeats (the real segmenter runs later and
# knows the language; here a wrong cut at an abbreviation costs nothing).
_UNIT_BREAK = re.compile(r"(?<=[.!?…])[\"”’»)]*\s+|(?<=[。！？])[”」』）]*")


def _units(paragraph: str) -> list[str]:
    units: list[str] = []
    start = 0
    for m in _UNIT_BREAK.finditer(paragraph):
        if m.end() >= len(paragraph) or m.end() == start:
            continue
        if starts_lower(paragraph[m.end() :]):
            continue
        units.append(paragraph[start : m.end()])
        start = m.end()
    units.append(paragraph[start:])
    return [u for u in units if u.strip()]


def _key(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", text.casefold()))


def _contains(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    return f" {' '.join(inner)} " in f" {' '.join(outer)} "


def _drop_repeats(paragraph: str, seen: set[tuple[str, ...]], dropped: list[tuple[str, str]]) -> str:
    """Remove sentences already kept elsewhere, or repeating a stretch of the one before."""
    kept: list[str] = []
    previous: tuple[str, ...] = ()
    for unit in _units(paragraph):
        key = _key(unit)
        if len(key) >= 4 and (key in seen or _contains(previous, key)):
            dropped.append(("copy-paste repeat", unit.strip()))
            continue
        seen.add(key)
        kept.append(unit)
        previous = key
    return "".join(kept).strip()


# --------------------------------------------------------------------------------------
# The paragraph classifier (jusText's method, for text that arrives without markup)
# --------------------------------------------------------------------------------------

GOOD, NEAR_GOOD, SHORT, BAD = "good", "near-good", "short", "bad"
CHROME = "chrome"  # bad by shape or vocabulary: says nothing of its neighbours (ads sit inside stories)
SHORT_WORDS = 10  # fewer words: too short to judge alone; the paragraphs around it decide
MISSING_STOP_WORDS = 15  # inside the story, a line this long without a full stop is story that lost it
LONG_WORDS = 25  # a paragraph this long with a story's stopword density is story by itself
STOPWORDS_LOW = 0.22  # stopword share (jusText's stoplists) below which a long line is not prose
STOPWORDS_HIGH = 0.30
REPEATED_SHORT_LINE = 2  # a short line seen this often on one page is the site's, not the story's

# ISO code → jusText stoplist name, for the languages jusText ships a stoplist for.
_STOPLIST_NAMES = {
    "af": "Afrikaans", "sq": "Albanian", "ar": "Arabic", "an": "Aragonese", "hy": "Armenian", "ast": "Asturian",
    "az": "Azerbaijani", "eu": "Basque", "be": "Belarusian", "bn": "Bengali", "bs": "Bosnian", "br": "Breton",
    "bg": "Bulgarian", "ca": "Catalan", "ceb": "Cebuano", "cv": "Chuvash", "hr": "Croatian", "cs": "Czech",
    "da": "Danish", "nl": "Dutch", "en": "English", "eo": "Esperanto", "et": "Estonian", "fi": "Finnish",
    "fr": "French", "gl": "Galician", "ka": "Georgian", "de": "German", "el": "Greek", "gu": "Gujarati",
    "ht": "Haitian", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "is": "Icelandic", "io": "Ido",
    "ig": "Igbo", "id": "Indonesian", "ga": "Irish", "it": "Italian", "jv": "Javanese", "kn": "Kannada",
    "kk": "Kazakh", "ko": "Korean", "ku": "Kurdish", "ky": "Kyrgyz", "la": "Latin", "lv": "Latvian",
    "lt": "Lithuanian", "lmo": "Lombard", "lb": "Luxembourgish", "mk": "Macedonian", "ms": "Malay",
    "ml": "Malayalam", "mt": "Maltese", "mr": "Marathi", "ne": "Nepali", "nb": "Norwegian_Bokmal",
    "no": "Norwegian_Bokmal", "nn": "Norwegian_Nynorsk", "oc": "Occitan", "fa": "Persian", "pl": "Polish",
    "pt": "Portuguese", "qu": "Quechua", "ro": "Romanian", "ru": "Russian", "sr": "Serbian", "scn": "Sicilian",
    "sk": "Slovak", "sl": "Slovenian", "es": "Spanish", "su": "Sundanese", "sw": "Swahili", "sv": "Swedish",
    "tl": "Tagalog", "fil": "Tagalog", "ta": "Tamil", "te": "Telugu", "tr": "Turkish", "tk": "Turkmen",
    "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "vo": "Volapuk", "wa": "Walloon",
    "war": "Waray_Waray", "cy": "Welsh", "fy": "West_Frisian", "yo": "Yoruba",
}


@functools.lru_cache(maxsize=64)
def stoplist(lang: str | None) -> frozenset[str]:
    """jusText's stoplist for `lang` (lower case), or empty when it has none for it."""
    name = _STOPLIST_NAMES.get(lang or "")
    if name is None:
        return frozenset()
    import justext

    return frozenset(w.casefold() for w in justext.get_stoplist(name))


_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def stopword_density(text: str, stopwords: frozenset[str]) -> float | None:
    """Share of the words of `text` that are stopwords; None when there is no stoplist."""
    if not stopwords:
        return None
    words = _WORD.findall(text.casefold())
    if not words:
        return 0.0
    return sum(w in stopwords for w in words) / len(words)


_QUESTION_END = re.compile(r"[?？]\W*$")
_TIMEZONE = re.compile(r"\b(?:GMT|UTC|CET|CEST|EST|EDT|PST|PDT|ICT|BST)\s*(?:[+-]\s*\d{1,2}(?::?\d{2})?)?\b")
_LETTERS = re.compile(r"[^\W\d_]")


def _is_sentence(text: str, words: int, stopwords: frozenset[str]) -> bool:
    """Shaped like prose: a terminal mark, two words or more, and (past three words, where
    the language has a stoplist) at least one function word."""
    if not ends_sentence(text) or words < 2:
        return False
    return not stopwords or words < 4 or any(w in stopwords for w in _WORD.findall(text.casefold()))


_LABEL_NUMBER = re.compile(r"^\W*[^\W\d_]+(?:[ -][^\W\d_]+){0,2}\s*[:：]\s*\d")  # "Reading time: 3 min"
_COPYRIGHT = re.compile(r"©|\(c\)\s*(?:19|20)\d\d|\bcopyright\b", re.IGNORECASE)
# "... Name Surname / AGENCY" at the end: a photo credit in any script with capital letters
_CREDIT_TAIL = re.compile(r"(?:^|\s)(?:\w[\w.'’-]*\s+){0,3}\w[\w.'’-]*\s?/\s?(\w{2,})\)?\.?$")
# "... aussehen. Visualisierung: Stadtwerke Freiburg": a sentence, then "Label: Name" unpunctuated
_LABELLED_CREDIT = re.compile(r"[.!?…]\s+[^\W\d_]+\s*[:：]\s*[^\W\d_][\w.'’&-]*(?:\s+[\w.'’&/-]+){0,4}$")
# "جانب من المسار الجديد (أرشيفية)", "(foto Ansa)", "（12日、共同）": a line ending in a short bracketed note
_BRACKETED_TAIL = re.compile(r"[(（]([^()（）]{1,30})[)）]\s*$")
_TIMESTAMP_WORDS_LEFT = 6  # a line of dates and times with at most this many other words


def _shape_reason(text: str, words: int) -> str | None:
    """Chrome told by its shape in any language: little but digits, dates, clocks or zones,
    a label with a count, a copyright line, a credit "Name / AGENCY" at the end."""
    letters = len(_LETTERS.findall(text))
    if letters == 0:
        return "debris"
    sentence = ends_sentence(text)
    if words <= 6 and not sentence:
        if _TIMEZONE.search(text) and word_count(_TIMEZONE.sub(" ", _DATE.sub(" ", text))) <= 4:
            return "timestamp"
        digits = sum(ch.isdigit() for ch in text)
        if digits and digits >= letters:  # "150 150 admin", "1 / 12", "03.12.2024 | 10:34"
            return "debris"
    if not sentence and _DATE_TIME.search(text):
        rest = _TIMEZONE.sub(" ", re.sub(_DATE_OR_TIME + r"|\d+", " ", text))
        if word_count(rest) <= _TIMESTAMP_WORDS_LEFT:  # "Le 14/03/2024 à 07h15 - Modifié le ... à 09h40"
            return "timestamp"
    if words <= 6 and _LABEL_NUMBER.match(text):
        return "label and count"
    if words < SHORT_WORDS * 2 and _COPYRIGHT.search(text):
        return "copyright"
    m = _CREDIT_TAIL.search(text)
    if m and words <= CAPTION_MAX_WORDS and m.group(1).isupper() and not m.group(1).isdigit():
        return "photo caption"
    if not sentence and words <= CAPTION_MAX_WORDS and _LABELLED_CREDIT.search(text):
        return "photo caption"
    m = _BRACKETED_TAIL.search(text)
    if m and words <= SHORT_WORDS * 2 and word_count(m.group(1)) <= 3 and not ends_sentence(text[: m.start()]):
        return "photo caption"
    return None


@dataclass(frozen=True)
class _Judged:
    block: Block
    words: int
    sentence: bool
    cls: str  # GOOD | NEAR_GOOD | SHORT | BAD (context-free)
    reason: str | None  # why BAD


def _judge(block: Block, title: str | None, stopwords: frozenset[str], seen_counts: dict[str, int]) -> _Judged:
    text = block.text
    words = word_count(text)
    # "... khi giá giảm. (Theo TTXVN)": the agency's name is not the sentence's end
    sentence = _is_sentence(_ATTRIBUTION.sub("", text), words, stopwords)
    reason = classify_paragraph(text, title)
    if reason is None and words < SHORT_WORDS and seen_counts.get(text.casefold(), 0) >= REPEATED_SHORT_LINE:
        reason = "repeated on the page"
    if reason:
        return _Judged(block, words, sentence, CHROME, reason)
    if words < SHORT_WORDS or (not sentence and not ends_sentence(text) and words < LONG_WORDS):
        # too short to judge alone, or a line without a terminal mark (a teaser headline, a
        # programme note): the paragraphs around it decide
        return _Judged(block, words, sentence, SHORT, None)
    density = stopword_density(text, stopwords)
    if density is None:  # no stoplist for the language: the sentence shape speaks instead
        if sentence or words >= LONG_WORDS:
            return _Judged(block, words, sentence, GOOD if sentence and words >= LONG_WORDS else NEAR_GOOD, None)
        return _Judged(block, words, sentence, BAD, "not prose")
    if density >= STOPWORDS_HIGH:
        return _Judged(block, words, sentence, GOOD if words >= LONG_WORDS else NEAR_GOOD, None)
    if density >= STOPWORDS_LOW or (sentence and density >= STOPWORDS_LOW / 2):
        return _Judged(block, words, sentence, NEAR_GOOD, None)
    return _Judged(block, words, sentence, BAD, "few stopwords")


def _neighbours(classes: list[str], skip: frozenset[str]) -> tuple[list[str], list[str]]:
    """For each position, the nearest class before and after it that is not in `skip`
    (BAD past either edge). Two linear passes."""
    n = len(classes)
    before, after = [BAD] * n, [BAD] * n
    last = BAD
    for i in range(n):
        before[i] = last
        if classes[i] not in skip:
            last = classes[i]
    last = BAD
    for i in range(n - 1, -1, -1):
        after[i] = last
        if classes[i] not in skip:
            last = classes[i]
    return before, after


def classify_blocks(
    blocks: list[Block], title: str | None, lang: str | None, *, structured: bool = False
) -> list[tuple[str, str | None]]:
    """(GOOD | HEADING | BAD, reason) for each block, in one pass per rule (linear).

    Context-free first, as jusText: chrome by shape or vocabulary is BAD; under
    `SHORT_WORDS` words SHORT; longer blocks are GOOD or NEAR_GOOD by their stopword density
    (or, for a language without a stoplist, their sentence shape), else BAD. Then context:
    a short block between story is story (a sentence) or a subheading (no terminal mark); a
    short sentence beside story is kept, unless it is a question at the story's edge (a
    reader poll); a near-good block is story unless chrome surrounds it; what is left is BAD.
    With `structured` the blocks come from markup (headings are tagged): a heading that
    introduces story is kept even where it opens the page.
    """
    stopwords = stoplist(lang)
    counts: dict[str, int] = {}
    for b in blocks:
        if word_count(b.text) < SHORT_WORDS:
            counts[b.text.casefold()] = counts.get(b.text.casefold(), 0) + 1
    judged = [_judge(b, title, stopwords, counts) for b in blocks]
    n = len(judged)

    # 1. near-good: story beside story; alone between chrome, chrome (jusText's rule, with a
    #    run of near-good paragraphs counting as story: news paragraphs are often one sentence)
    cf = [j.cls for j in judged]
    good_before, good_after = _neighbours(cf, frozenset((SHORT, NEAR_GOOD, CHROME)))
    any_before, any_after = _neighbours(cf, frozenset((SHORT, CHROME)))
    classes = list(cf)
    for i in range(n):
        if cf[i] == NEAR_GOOD:
            beside = (good_before[i], good_after[i], any_before[i], any_after[i])
            classes[i] = GOOD if GOOD in beside or NEAR_GOOD in beside else BAD

    # 2. the story's span: first to last good paragraph (a near-good one alone between chrome
    #    inside it is story too: an ad or a teaser box sits on both sides of it)
    goods = [i for i in range(n) if classes[i] == GOOD]
    first, last = (goods[0], goods[-1]) if goods else (n, -1)
    for i in range(first + 1, last):
        if cf[i] == NEAR_GOOD:
            classes[i] = GOOD
    # a heading introduces story: the next block that is not chrome (a caption, an ad) is good
    good_ahead = [False] * n
    next_is_good = False
    for i in range(n - 1, -1, -1):
        good_ahead[i] = next_is_good
        if classes[i] != CHROME:
            next_is_good = classes[i] == GOOD
    before, after = _neighbours(classes, frozenset((SHORT, CHROME)))

    # 3. short blocks by their place
    def in_box(k: int) -> bool:
        """Position k is an edge, chrome, or a short line that is not a sentence."""
        return not 0 <= k < n or cf[k] == CHROME or (cf[k] == SHORT and not judged[k].sentence)

    verdicts: list[tuple[str, str | None]] = []
    for i, j in enumerate(judged):
        if classes[i] == GOOD:
            verdicts.append((GOOD, None))
        elif classes[i] in (BAD, CHROME):
            verdicts.append((BAD, j.reason or "alone among chrome"))
        elif j.sentence:
            inside = first < i < last
            beside = GOOD in (before[i], after[i]) and not _QUESTION_END.search(j.block.text)
            if (inside or beside) and not (in_box(i - 1) and in_box(i + 1)):
                verdicts.append((GOOD, None))
            else:  # outside the story, or one line of a box of widget lines (a newsletter box)
                verdicts.append((SHORT, "short line outside the story"))
        elif (good_ahead[i] and j.words <= SHORT_WORDS and j.block.kind != ITEM
              and (first < i or (structured and j.block.kind == HEADING))):
            verdicts.append((HEADING, None))
        elif first < i < last and (j.words >= MISSING_STOP_WORDS or j.block.kind == ITEM):
            # a story paragraph that lost its full stop, or an item of a list inside the story
            verdicts.append((GOOD, None))
        else:
            verdicts.append((BAD, "short line outside the story"))
    if not goods:
        # No paragraph is story by itself (a brief of short paragraphs): what reads as prose
        # is the story, and short lines are all there is when nothing does.
        verdicts = [(GOOD, None) if j.cls == NEAR_GOOD or (j.cls == SHORT and j.sentence) else v
                    for v, j in zip(verdicts, judged)]
        if not any(v == GOOD for v, _ in verdicts):
            verdicts = [(GOOD, None) if j.cls == SHORT else v for v, j in zip(verdicts, judged)]
    return [(v, r) if v in (GOOD, HEADING) else (BAD, r or "outside the story") for v, r in verdicts]


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

# zero-width space, word joiner, byte-order mark, soft hyphen (ZWJ/ZWNJ stay: scripts need them)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")  # no-break and typographic spaces


def normalize_text(text: str) -> str:
    """NFC, HTML entities decoded and stray tags removed, invisible characters removed,
    exotic spaces made plain."""
    if "&" in text or "<" in text:
        text = scrub_markup(text)
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_title(title: str | None) -> str | None:
    """The title, whitespace collapsed and debris repaired; a " | Site name" suffix removed."""
    if title is None:
        return None
    title = " ".join(normalize_text(title).split())
    head, sep, tail = title.rpartition(" | ")
    if sep and head and word_count(tail) <= 4:
        title = head
    title = repair_punctuation(title)
    return title or None


def _detect_lang(blocks: list[Block]) -> str | None:
    from pipeline.detect import detect_language

    sample = " ".join(b.text for b in blocks if word_count(b.text) >= SHORT_WORDS)[:5_000]
    detection = detect_language(sample or " ".join(b.text for b in blocks)[:5_000])
    return detection.lang if detection.confidence > 0 else None


# On an extractor's output (structured blocks) only these rules run: on the benchmark's dev
# split each of them removed more chrome than story; the classifier, the shapes and the other
# rules cost story there (tables, lists and tweets look like chrome to them). BENCHMARKS.md.
EXTRACTED_RULES = frozenset(
    {"site chrome", "call to action", "comment notice", "photo caption", "byline", "repeated headline"}
)
EXTRACTED_REPEATS = False  # repeated paragraphs on a page are mostly the page's own (Q&A, lists)


def _classify_extracted(blocks: list[Block], title: str | None) -> list[tuple[str, str | None]]:
    if (not any(ends_sentence(b.text) and word_count(b.text) >= 3 for b in blocks)
            and sum(word_count(b.text) for b in blocks) < 2 * SHORT_WORDS):
        # not one sentence and a few words: a navigation bar or a footer the extractor fell back
        # on, no article (a calendar or a table of results has no sentence either, but many lines)
        return [(BAD, "no prose on the page")] * len(blocks)
    verdicts: list[tuple[str, str | None]] = []
    for block in blocks:
        reason = classify_paragraph(block.text, title, shapes=False)
        if reason in EXTRACTED_RULES:
            verdicts.append((BAD, reason))
        else:
            verdicts.append((HEADING if block.kind == HEADING else GOOD, None))
    n = len(blocks)
    # a heading followed straight by another heading introduces nothing (a list of teasers)
    for i in range(n - 1):
        if blocks[i].kind == HEADING and blocks[i + 1].kind == HEADING and verdicts[i][0] != BAD:
            verdicts[i] = (BAD, "heading without story")
    # the reporters' credit and contact lines that close a story
    for i in range(max(0, n - CREDIT_TAIL_BLOCKS), n):
        if word_count(blocks[i].text) <= CREDIT_MAX_WORDS and _CREDIT_LINE.search(blocks[i].text):
            verdicts[i] = (BAD, "credit")
    return verdicts


CREDIT_TAIL_BLOCKS = 3  # credit lines are looked for among a story's last blocks only
CREDIT_MAX_WORDS = 40
_CREDIT_LINE = re.compile(
    r"^\(?(?:additional )?(?:reporting|writing|editing) by\b|\bcontributed (?:reporting|to this (?:report|story|article))"
    r"|\b(?:may|can) be reached at\b|^reach the (?:reporter|author|writer)s?\b",
    re.IGNORECASE,
)


def clean_blocks(
    title: str | None,
    blocks: list[Block] | tuple[Block, ...],
    *,
    lang: str | None = None,
    structured: bool = False,
    extracted: Extracted | None = None,
) -> Cleaned:
    """Keep the story blocks (and the subheadings among them), repair their punctuation."""
    title = clean_title(title)
    normalized = []
    for b in blocks:
        text = " ".join(normalize_text(b.text).split())
        if text:
            normalized.append(Block(b.kind, text))
    dropped: list[tuple[str, str]] = []
    kept: list[Block] = []
    if structured:
        verdicts = _classify_extracted(normalized, title)
    else:
        verdicts = classify_blocks(normalized, title, lang or _detect_lang(normalized))
    for block, (verdict, reason) in zip(normalized, verdicts):
        if verdict == BAD:
            dropped.append((reason or "outside the story", block.text))
        else:
            kept.append(block if verdict == GOOD or block.kind == HEADING else Block(HEADING, block.text))

    out: list[Block] = []
    seen: set[tuple[str, ...]] = set()
    for block in kept:
        if block.kind == HEADING:
            out.append(Block(HEADING, repair_punctuation(block.text)))
            continue
        text = _ATTRIBUTION.sub("", block.text)
        text = repair_punctuation(text)
        if not structured or EXTRACTED_REPEATS:
            text = _drop_repeats(text, seen, dropped)
        if text:
            out.append(Block(block.kind, text))
    while out and out[-1].kind == HEADING:  # a heading that introduces nothing
        dropped.append(("heading without story", out.pop().text))
    paragraphs = [b.text for b in out if b.kind != HEADING]
    if not paragraphs and out:  # headings are all there is
        paragraphs = [b.text for b in out]
        out = [Block(PARAGRAPH, p) for p in paragraphs]
    return Cleaned(
        title=title, text="\n\n".join(paragraphs), paragraphs=paragraphs, blocks=tuple(out),
        dropped=dropped, extracted=extracted,
    )


_BULLET = re.compile(r"^(?:[-•*▪◦‣–]|\d{1,2}[.)])\s+(?=\S)")  # a list item in plain text


def clean_article(title: str | None, text: str, lang: str | None = None) -> Cleaned:
    """Strip page chrome from a plain-text article and repair its punctuation (module docstring)."""
    blocks = []
    for paragraph in split_paragraphs(normalize_text(text)):
        bullet = _BULLET.match(paragraph)
        blocks.append(Block(ITEM, paragraph[bullet.end():]) if bullet else Block(PARAGRAPH, paragraph))
    return clean_blocks(title, blocks, lang=lang)


def clean_input(
    title: str | None, text: str | None, html: str | None = None, url: str | None = None, lang: str | None = None
) -> Cleaned:
    """The article body as the pipeline reads it: HTML (given as `html`, or pasted into
    `text`) goes through the extractor first; plain text straight to the cleaner."""
    if html is None and text and looks_like_html(text):
        html = text
    if html is None:
        return clean_article(title, text or "", lang)
    extracted = extract_html(html, url)
    return clean_blocks(
        title or extracted.title, extracted.blocks, lang=lang, structured=extracted.method != "stripped",
        extracted=extracted,
    )
