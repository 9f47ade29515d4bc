"""Known language codes: what `lang` and `targets` may name.

ISO 639-1 where one exists, a handful of ISO 639-3 codes for languages that have no
two-letter code but are served by NLLB/M2M100/OPUS-MT, and the ISO 639-2 local-use
range qaa–qtz (used by the project's toy test languages).
"""

from __future__ import annotations

ISO_639_1 = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi
    ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks
    ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl
    nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl
    sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
    vi vo wa wo xh yi yo za zh zu
    """.split()
)

# Three-letter codes with no ISO 639-1 equivalent that real translation models serve.
ISO_639_3_EXTRA = frozenset(
    """
    ace ast bho ceb ckb crh fil fur hne ilo kab kea lij lmo ltg mag mai min mni nso pag pap
    scn shn szl tpi war yue zsm
    """.split()
)

LOCAL_USE = frozenset(f"q{b}{c}" for b in "abcdefghijklmnopqrst" for c in "abcdefghijklmnopqrstuvwxyz")

KNOWN_CODES = ISO_639_1 | ISO_639_3_EXTRA | LOCAL_USE

PIVOT = "en"


def normalize_code(code: str) -> str:
    """Lower-case and strip a code; region subtags (`pt-BR`, `zh_Hant`) keep only the language."""
    code = code.strip().lower().replace("_", "-")
    return code.split("-", 1)[0]


def is_known(code: str) -> bool:
    return normalize_code(code) in KNOWN_CODES


# Languages written without spaces between words: sentences are joined without a space.
NO_SPACE_SCRIPTS = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "yue"})


def join_sentences(sentences: list[str], lang: str) -> str:
    return ("" if lang in NO_SPACE_SCRIPTS else " ").join(s.strip() for s in sentences if s.strip())
