"""Cleaning (SPEC §1.3): a news page as a feed delivers it → the story, every sentence once.

What goes, paragraph by paragraph (each rule is one entry of `_PARAGRAPH_RULES`, in order;
the first that matches names the reason, which `Cleaned.dropped` keeps for debugging):

* site chrome: navigation, ad and widget lines ("Source link", "Related Articles",
  "Back to top button", "PUBLICITÉ", "Anzeige", "Weitere Artikel aus diesem Ressort",
  "Tin liên quan", ...) and teasers that point elsewhere ("Lire aussi : ...", "Tags: ...");
* calls to action: newsletter, follow-us and app prompts, addressed to the reader;
* comment-section notices ("Kommentare", "Les commentaires sont fermés", "12 comments");
* editor's notes and feed credits: a paragraph wholly in brackets ("(Except for the title,
  this story has not been edited ...)", "(Reporting by ...; Editing by ...)");
* site promos: paragraphs stuffed with news-site slogans ("News5s: Update the world's
  latest breaking news ...");
* photo captions: a paragraph that ends with a photo credit or image marker ("... (File)",
  "REUTERS/Name", "Photo: AFP", "Foto: Name/dpa", "JEFF PACHOUD / AFP", "- Ảnh 1", "©");
* contact headers: hotline, phone and e-mail lines;
* bylines and timestamps ("By Name", "Von Name", "Publié le 12 mars 2024 à 10h32", ...);
* the headline repeated in the text (a near-duplicate of the title);
* headings: short lines (at most `HEADING_MAX_WORDS` words) that do not end like a
  sentence. This catches subheadings inside the story ("US-China tension") and whatever
  chrome the vocabulary does not know, in any language. Subheadings are dropped on purpose:
  they are not sentences, a summary never quotes them, and a ranker or a translator given
  "Russia ‘especially hopeful’" as a sentence does worse, not better. They are kept only
  when nothing else would be left.

What is repaired inside the story (no word is rewritten; only marks and repeats go):

* punctuation debris, see `_DEBRIS` ("said. , director" → "said, director", "invasion. ."
  → "invasion.", "assured him. that" → "assured him that", "war. war in" → "war in") and
  a closing quote that closes nothing ("harmony.” more reasonable”" → "harmony more
  reasonable”");
* copy-paste repeats: a sentence that repeats one already kept, or that repeats a stretch
  of the sentence just before it ("... said Hal Brands, professor of X. Brands, professor
  of X."), and a paragraph pasted twice;
* a trailing agency attribution in brackets ("... (AFP)", "(Theo TTXVN)") is removed and the
  paragraph kept.

Every rule is a pattern of chrome (vocabulary in en/fr/de/es/vi, caption and credit shapes,
contact shapes), not a string of one page. Add vocabulary for a new language to the tables.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

from pipeline.segment import NO_SPACE_CHARS, ends_sentence, split_paragraphs, starts_lower


@dataclass
class Cleaned:
    title: str | None
    text: str  # the story paragraphs, separated by blank lines
    paragraphs: list[str]
    # (reason, paragraph) for each paragraph removed, in page order: for `--debug` views and tests.
    dropped: list[tuple[str, str]] = field(default_factory=list, repr=False, compare=False)


HEADING_MAX_WORDS = 8  # an unpunctuated line this short is a heading or chrome, not a sentence
SHORT_LINE_MAX_WORDS = 30  # chrome rules that read vocabulary only look at lines this short
CAPTION_MAX_WORDS = 60  # a longer paragraph ending in a credit is story with a credit attached


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
    r"read (more|also|next)", r"see also", r"related", r"tags?", r"topics?", r"sources?", r"more on this",
    r"(à )?lire (aussi|également)", r"(à )?voir aussi", r"mots[- ]clés", r"thèmes?", r"sur le même sujet",
    r"lesen sie (auch|mehr)", r"mehr zum thema", r"auch interessant", r"schlagw(o|ö)rte?", r"themen", r"quellen?",
    r"lee (también|más)", r"te puede interesar", r"ver también", r"etiquetas", r"temas", r"fuentes?",
    r"xem thêm", r"đọc thêm", r"tin liên quan", r"từ khóa", r"nguồn",
]

# Calls to action addressed to the reader, matched at the start of a line.
CALLS_TO_ACTION = [
    r"(sign up|subscribe|register)\b.*\b(newsletter|inbox|alerts|updates|briefing)",
    r"follow us\b", r"(download|get) (our|the) app\b", r"(join|get) our\b.*\bnewsletter", r"like us on\b",
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


def _is_heading(p: str) -> bool:
    return word_count(p) <= HEADING_MAX_WORDS and not ends_sentence(p)


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
HEADING = "heading"


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


def classify_paragraph(paragraph: str, title: str | None = None) -> str | None:
    """Why `paragraph` is not story text, or None if it is. `paragraph` is whitespace-normalized."""
    for reason, rule in _PARAGRAPH_RULES:
        if rule(paragraph):
            return reason
    if _is_repeated_headline(paragraph, title):
        return "repeated headline"
    if _is_heading(paragraph):
        return HEADING
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
# Entry point
# --------------------------------------------------------------------------------------

# zero-width space, word joiner, byte-order mark, soft hyphen (ZWJ/ZWNJ stay: scripts need them)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")  # no-break and typographic spaces


def normalize_text(text: str) -> str:
    """NFC, HTML entities decoded, invisible characters removed, exotic spaces made plain."""
    if "&" in text:
        text = html.unescape(text)
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


def clean_article(title: str | None, text: str) -> Cleaned:
    """Strip page chrome from an article and repair its punctuation (module docstring)."""
    title = clean_title(title)
    dropped: list[tuple[str, str]] = []
    story: list[str] = []
    headings: list[str] = []
    for paragraph in split_paragraphs(normalize_text(text)):
        reason = classify_paragraph(paragraph, title)
        if reason == HEADING:
            headings.append(paragraph)
        if reason:
            dropped.append((reason, paragraph))
        else:
            story.append(paragraph)
    if not story and headings:  # nothing but short lines: they are all there is to keep
        story = headings
        dropped = [d for d in dropped if d[0] != HEADING]

    paragraphs: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for paragraph in story:
        paragraph = _ATTRIBUTION.sub("", paragraph)
        paragraph = _drop_repeats(repair_punctuation(paragraph), seen, dropped)
        if paragraph:
            paragraphs.append(paragraph)
    return Cleaned(title=title, text="\n\n".join(paragraphs), paragraphs=paragraphs, dropped=dropped)
