"""Language detection (docs/architecture.md, step 4) with py3langid, which ships its model: nothing is downloaded.

* An explicit `lang` on the article (the `hint`) wins, with confidence 1.0.
* Otherwise py3langid's normalized probability of its best guess is the confidence. Its
  labels are ISO 639-1 where the language has a code; the few it gives as ISO 639-3 for a
  variety of a language with one (Moroccan and Egyptian Arabic, Wu Chinese, ...) are mapped
  to it, and the others (e.g. "pcm", Nigerian Pidgin) are passed through.
* Text too short to say anything (no letters at all, or py3langid's "no linguistic content")
  gives the pivot language, English, with confidence 0.0, so the pipeline can go on and the
  result shows that nobody knows. Short text (under `SHORT_TEXT_LETTERS` letters) keeps the
  guess but its confidence is scaled down in proportion: a two-word title is not evidence.

The identifier is loaded once per process, lazily, on first use (2–3 s: the model is
xz-compressed; a worker may call `warm_up()` at start so the first article does not pay it).
It holds only model data, so sharing it between threads is safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pipeline.languages import PIVOT, normalize_code

SHORT_TEXT_LETTERS = 40  # fewer letters than this and the confidence is scaled down
MAX_CHARS = 20_000  # the start of a long article decides; more text does not change the answer

# py3langid labels that are ISO 639-3 codes of a variety of an ISO 639-1 language.
_TO_ISO_639_1 = {
    "ary": "ar", "arz": "ar", "wuu": "zh", "uzs": "uz", "sdh": "ku", "gug": "gn",
    "fuv": "ff", "kik": "ki", "hbo": "he", "grc": "el",
}
_NO_LANGUAGE = {"zxx", "und"}


@dataclass(frozen=True)
class Detection:
    lang: str
    confidence: float


_lock = threading.Lock()
_identifier = None


def _get_identifier():
    """The py3langid identifier with normalized probabilities, loaded once."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid import langid

                if hasattr(langid.LanguageIdentifier, "from_model_file"):  # py3langid ≥ 0.4
                    _identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
                else:  # py3langid 0.3
                    _identifier = langid.LanguageIdentifier.from_pickled_model(langid.MODEL_FILE, norm_probs=True)
    return _identifier


def warm_up() -> None:
    """Load the identifier now rather than on the first article."""
    _get_identifier()


def detect_language(text: str, hint: str | None = None) -> Detection:
    """The language of `text` as an ISO code with a confidence in [0, 1]; `hint` wins."""
    if hint and hint.strip():
        return Detection(normalize_code(hint), 1.0)
    letters = sum(ch.isalpha() for ch in text[:MAX_CHARS])
    if letters == 0:
        return Detection(PIVOT, 0.0)
    lang, probability = _get_identifier().classify(text[:MAX_CHARS])
    if lang in _NO_LANGUAGE:
        return Detection(PIVOT, 0.0)
    confidence = float(probability) * min(1.0, letters / SHORT_TEXT_LETTERS)
    return Detection(_TO_ISO_639_1.get(lang, lang), round(min(max(confidence, 0.0), 1.0), 6))
