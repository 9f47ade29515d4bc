"""The catalogue of real models babelwire recommends and pulls (`models/catalogue.json`).

Each entry names a Hugging Face repository, the revision to download, what the model does
and for which languages, its license and approximate download size. `pull_hint` turns a
missing language pair into the command that fetches the best model for it; the error
messages of the engines and `babelwire doctor` use it.

Routing preference for recommendations (docs/contracts.md, Model store): a direct OPUS-MT pair, else a
multi-language OPUS-MT model, else M2M100. Non-commercial models (NLLB-200, mT5-XLSum) are
never recommended by default: pulling them needs an explicit license confirmation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.exceptions import CatalogueError
from pipeline.languages import PIVOT, normalize_code

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")

# ISO code -> NLLB-200 (FLORES-200) language token. Where a language has several scripts or
# variants in FLORES-200, the one news sites mostly publish in is listed.
NLLB_LANGUAGE_CODES: dict[str, str] = {
    "ace": "ace_Latn", "af": "afr_Latn", "ak": "aka_Latn", "am": "amh_Ethi", "ar": "arb_Arab",
    "as": "asm_Beng", "ast": "ast_Latn", "az": "azj_Latn", "ba": "bak_Cyrl", "be": "bel_Cyrl",
    "bg": "bul_Cyrl", "bm": "bam_Latn", "bn": "ben_Beng", "bo": "bod_Tibt", "bs": "bos_Latn",
    "ca": "cat_Latn", "ceb": "ceb_Latn", "ckb": "ckb_Arab", "crh": "crh_Latn", "cs": "ces_Latn",
    "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn", "dz": "dzo_Tibt", "ee": "ewe_Latn",
    "el": "ell_Grek", "en": "eng_Latn", "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn",
    "eu": "eus_Latn", "fa": "pes_Arab", "ff": "fuv_Latn", "fi": "fin_Latn", "fj": "fij_Latn",
    "fo": "fao_Latn", "fr": "fra_Latn", "fur": "fur_Latn", "ga": "gle_Latn", "gd": "gla_Latn",
    "gl": "glg_Latn", "gn": "grn_Latn", "gu": "guj_Gujr", "ha": "hau_Latn", "he": "heb_Hebr",
    "hi": "hin_Deva", "hne": "hne_Deva", "hr": "hrv_Latn", "ht": "hat_Latn", "hu": "hun_Latn",
    "hy": "hye_Armn", "id": "ind_Latn", "ig": "ibo_Latn", "ilo": "ilo_Latn", "is": "isl_Latn",
    "it": "ita_Latn", "ja": "jpn_Jpan", "jv": "jav_Latn", "ka": "kat_Geor", "kab": "kab_Latn",
    "kea": "kea_Latn", "kg": "kon_Latn", "ki": "kik_Latn", "kk": "kaz_Cyrl", "km": "khm_Khmr",
    "kn": "kan_Knda", "ko": "kor_Hang", "kr": "knc_Latn", "ks": "kas_Arab", "ku": "kmr_Latn",
    "ky": "kir_Cyrl", "lb": "ltz_Latn", "lg": "lug_Latn", "li": "lim_Latn", "lij": "lij_Latn",
    "lmo": "lmo_Latn", "ln": "lin_Latn", "lo": "lao_Laoo", "lt": "lit_Latn", "ltg": "ltg_Latn",
    "lv": "lvs_Latn", "mag": "mag_Deva", "mai": "mai_Deva", "mg": "plt_Latn", "mi": "mri_Latn",
    "min": "min_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym", "mn": "khk_Cyrl", "mni": "mni_Beng",
    "mr": "mar_Deva", "ms": "zsm_Latn", "mt": "mlt_Latn", "my": "mya_Mymr", "nb": "nob_Latn",
    "ne": "npi_Deva", "nl": "nld_Latn", "nn": "nno_Latn", "nso": "nso_Latn", "ny": "nya_Latn",
    "oc": "oci_Latn", "om": "gaz_Latn", "or": "ory_Orya", "pa": "pan_Guru", "pag": "pag_Latn",
    "pap": "pap_Latn", "pl": "pol_Latn", "ps": "pbt_Arab", "pt": "por_Latn", "qu": "quy_Latn",
    "rn": "run_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "rw": "kin_Latn", "sa": "san_Deva",
    "sc": "srd_Latn", "scn": "scn_Latn", "sd": "snd_Arab", "sg": "sag_Latn", "shn": "shn_Mymr",
    "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "sm": "smo_Latn", "sn": "sna_Latn",
    "so": "som_Latn", "sq": "als_Latn", "sr": "srp_Cyrl", "ss": "ssw_Latn", "st": "sot_Latn",
    "su": "sun_Latn", "sv": "swe_Latn", "sw": "swh_Latn", "szl": "szl_Latn", "ta": "tam_Taml",
    "te": "tel_Telu", "tg": "tgk_Cyrl", "th": "tha_Thai", "ti": "tir_Ethi", "tk": "tuk_Latn",
    "tl": "tgl_Latn", "tn": "tsn_Latn", "tpi": "tpi_Latn", "tr": "tur_Latn", "ts": "tso_Latn",
    "tt": "tat_Cyrl", "tw": "twi_Latn", "ug": "uig_Arab", "uk": "ukr_Cyrl", "ur": "urd_Arab",
    "uz": "uzn_Latn", "vi": "vie_Latn", "war": "war_Latn", "wo": "wol_Latn", "xh": "xho_Latn",
    "yi": "ydd_Hebr", "yo": "yor_Latn", "yue": "yue_Hant", "zh": "zho_Hans", "zu": "zul_Latn",
}

# M2M100 language tokens are `__<code>__`; these codes are not ISO 639-1/-3 codes.
M2M100_CODE_TO_ISO: dict[str, str] = {"ns": "nso"}


@dataclass(frozen=True)
class ConvertedSource:
    """A ready CTranslate2 conversion on the hub, taken as is instead of converting."""

    hub_id: str
    revision: str
    quantization: str


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    hub_id: str
    revision: str
    task: str
    family: str
    license: str
    size_mb: int
    pairs: tuple[tuple[str, str], ...] = ()
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # summarization: languages it summarizes
    target_selection: str = "none"
    language_tokens: dict[str, str] = field(default_factory=dict)
    input_limit: int | None = None
    commercial_use: bool = True
    converted: ConvertedSource | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CatalogueEntry":
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise CatalogueError(f"catalogue entry {data.get('name')!r}: unknown keys {sorted(unknown)}")
        values = dict(data)
        values["pairs"] = tuple((s, t) for s, t in values.get("pairs", ()))
        for key in ("sources", "targets", "languages"):
            values[key] = tuple(values.get(key, ()))
        if values.get("converted"):
            values["converted"] = ConvertedSource(**values["converted"])
        return cls(**values)

    def translation_pairs(self) -> set[tuple[str, str]]:
        pairs = set(self.pairs)
        pairs |= {(s, t) for s in self.sources for t in self.targets if s != t}
        return pairs

    def serves(self, source: str, target: str) -> bool:
        if self.task != "translation":
            return False
        return (source, target) in self.pairs or (
            source != target and source in self.sources and target in self.targets
        )

    @property
    def many_to_many(self) -> bool:
        return len(self.sources) > 1 and len(self.targets) > 1

    @property
    def pinned(self) -> bool:
        """A 40-hex commit id; "main" or a tag may move under us."""
        return len(self.revision) == 40 and all(c in "0123456789abcdef" for c in self.revision)

    def pull_command(self) -> str:
        suffix = "" if self.commercial_use else " --accept-license"
        return f"babelwire models pull {self.name}{suffix}"

    def languages_text(self) -> str:
        if self.task != "translation":
            return ",".join(self.languages)
        if self.many_to_many:
            return f"{len(set(self.sources) | set(self.targets))} languages, any direction"
        return " ".join(f"{s}→{t}" for s, t in sorted(self.translation_pairs()))


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[CatalogueEntry, ...]
    defaults: tuple[str, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> "Catalogue":
        path = Path(path) if path else CATALOGUE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CatalogueError(f"cannot read the model catalogue {path}: {exc}") from None
        entries = tuple(CatalogueEntry.from_dict(m) for m in data["models"])
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise CatalogueError(f"{path}: duplicate model names")
        defaults = tuple(data.get("defaults", ()))
        missing = set(defaults) - set(names)
        if missing:
            raise CatalogueError(f"{path}: defaults name unknown models {sorted(missing)}")
        return cls(entries=entries, defaults=defaults)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def find(self, name: str) -> CatalogueEntry | None:
        for entry in self.entries:
            if entry.name == name or entry.name.lower() == name.lower():
                return entry
        return None

    def get(self, name: str) -> CatalogueEntry:
        entry = self.find(name)
        if entry is None:
            close = [n for n in self.names() if name.lower() in n.lower()][:5]
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            raise CatalogueError(
                f"{name!r} is not in the catalogue{hint}; see `babelwire models list --available`, "
                "or pull a hub repository by id: `babelwire models pull ORG/NAME --revision COMMIT`"
            )
        return entry

    def translation_for(
        self, source: str, target: str, *, allow_noncommercial: bool = False
    ) -> CatalogueEntry | None:
        """The model to recommend for source→target: direct OPUS-MT pair > multi-language
        OPUS-MT > many-to-many (commercial-use licenses first), or None."""
        source, target = normalize_code(source), normalize_code(target)
        candidates = [
            e for e in self.entries
            if e.serves(source, target) and (e.commercial_use or allow_noncommercial)
        ]

        def rank(entry: CatalogueEntry) -> tuple[int, int, int]:
            if entry.family == "marian":
                kind = 0 if len(entry.translation_pairs()) == 1 else 1
            else:
                kind = 2
            return (kind, 0 if entry.commercial_use else 1, entry.size_mb)

        return min(candidates, key=rank, default=None)

    def summarizer_for(self, lang: str, *, allow_noncommercial: bool = False) -> CatalogueEntry | None:
        """The abstractive summarizer to recommend for `lang`, smallest commercial-use first."""
        lang = normalize_code(lang)
        candidates = [
            e for e in self.entries
            if e.task == "summarization" and lang in e.languages
            and (e.commercial_use or allow_noncommercial)
        ]
        return min(candidates, key=lambda e: (len(e.languages) > 1, e.size_mb), default=None)


def load_catalogue(path: Path | None = None) -> Catalogue:
    return Catalogue.load(path) if path is not None else _shipped_catalogue()


@lru_cache(maxsize=1)
def _shipped_catalogue() -> Catalogue:
    """The catalogue file in this package, read once: every "no model" error consults it."""
    return Catalogue.load()


def pull_hint(source: str, target: str, catalogue: Catalogue | None = None) -> str:
    """The command that fetches a model for source→target, e.g.
    `babelwire models pull opus-mt-en-de`; for use in "no model" error messages."""
    catalogue = catalogue or _shipped_catalogue()
    source, target = normalize_code(source), normalize_code(target)
    entry = catalogue.translation_for(source, target)
    if entry is not None:
        return entry.pull_command()
    if source != PIVOT and target != PIVOT:
        # No model for the pair itself: two models through the pivot language do it.
        first = catalogue.translation_for(source, PIVOT)
        second = catalogue.translation_for(PIVOT, target)
        if first is not None and second is not None:
            return f"{first.pull_command()} && {second.pull_command()}"
    # Not in the catalogue: OPUS-MT publishes many more pairs under this naming scheme.
    return f"babelwire models pull opus-mt-{source}-{target}"


def summarizer_hint(lang: str, catalogue: Catalogue | None = None) -> str:
    """The command that fetches an abstractive summarizer for `lang` (English otherwise:
    the pipeline summarizes other languages through English)."""
    catalogue = catalogue or _shipped_catalogue()
    entry = catalogue.summarizer_for(lang) or catalogue.summarizer_for(PIVOT)
    return entry.pull_command() if entry else "babelwire models pull distilbart-cnn-12-6"
