"""The committed toy models (tests/fixtures/models, docs/contracts.md, Model store) do exactly what their tasks say.

They are loaded here with CTranslate2 and `tokenizers` directly, not through babelwire's
engines, so that a failure points at the models, not at the engine. The source is fed as
the engine feeds it: the tokenizer's pieces, an out-of-vocabulary piece as its own surface
string (CTranslate2 maps it to <unk>), then </s>.

Exact outputs are asserted with compute types float32 and int8 (babelwire's CPU default).
"""

from __future__ import annotations

import json
import random
from functools import cache

import ctranslate2
import pytest
from tokenizers import Tokenizer

from models.manifest import Manifest
from tests.fixtures.build_models import (
    EN_TO_QAA,
    EN_TO_QAB,
    EN_WORDS,
    EOS,
    FIXTURE_MODELS_DIR,
    QAA_TO_EN,
    RECIPES,
    UNK,
    expected_lead,
    expected_translation,
    split_words,
    toy_article,
)

TRANSLATORS = {"toy-en-qaa": EN_TO_QAA, "toy-qaa-en": QAA_TO_EN, "toy-en-qab": EN_TO_QAB}
COMPUTE_TYPES = ["float32", "int8"]
HELD_OUT_SEED = 20240917  # not a training seed (those are 11..14 and 1011..1014)


@cache
def translator(name: str, compute_type: str) -> ctranslate2.Translator:
    return ctranslate2.Translator(str(FIXTURE_MODELS_DIR / name), device="cpu", compute_type=compute_type,
                                  inter_threads=1, intra_threads=1)


@cache
def tokenizer(name: str) -> Tokenizer:
    return Tokenizer.from_file(str(FIXTURE_MODELS_DIR / name / "tokenizer.json"))


def source_tokens(name: str, text: str) -> list[str]:
    encoding = tokenizer(name).encode(text, add_special_tokens=False)
    return [
        text[start:end] if token == UNK else token
        for token, (start, end) in zip(encoding.tokens, encoding.offsets)
    ] + [EOS]


def run(name: str, texts: list[str], compute_type: str = "float32", beam_size: int = 1,
        replace_unknowns: bool = True) -> list[str]:
    results = translator(name, compute_type).translate_batch(
        [source_tokens(name, t) for t in texts],
        beam_size=beam_size,
        replace_unknowns=replace_unknowns,
        max_decoding_length=80,
    )
    return [tokenizer(name).decoder.decode(r.hypotheses[0]) for r in results]


def in_language(text: str, mapping: dict[str, str]) -> str:
    return expected_translation(text, mapping)


# -- the store side: what babelwire reads ---------------------------------------------------

@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_model_dir_has_manifest_tokenizer_and_converted_model(recipe):
    model_dir = FIXTURE_MODELS_DIR / recipe.name
    manifest = Manifest.load(model_dir)
    assert manifest.name == recipe.name and manifest.task == recipe.task
    assert manifest.family == "marian" and manifest.replace_unknowns
    assert manifest.input_limit == recipe.max_tokens
    assert manifest.tokenizer.type == "tokenizer.json"
    if recipe.task == "translation":
        assert manifest.translation_pairs() == {(recipe.source_lang, recipe.target_lang)}
    else:
        assert manifest.languages == ["en"]
    for file in ("model.bin", "config.json", "shared_vocabulary.json", manifest.tokenizer.file):
        assert (model_dir / file).is_file(), file
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["eos_token"], config["unk_token"], config["decoder_start_token"]) == (EOS, UNK, EOS)


def test_fixture_models_stay_small():
    total = sum(f.stat().st_size for f in FIXTURE_MODELS_DIR.rglob("*") if f.is_file())
    assert total < 6_000_000, f"tests/fixtures/models is {total} bytes"


def test_tokenizer_is_case_sensitive_words_and_punctuation():
    tok = tokenizer("toy-en-qaa")
    encoding = tok.encode("The president, in Washington.")
    assert encoding.tokens == ["The", "president", ",", "in", UNK, ".", EOS]
    assert source_tokens("toy-en-qaa", "The president, in Washington.") == [
        "The", "president", ",", "in", "Washington", ".", EOS,
    ]
    assert tok.decoder.decode(["Ta", "prezo", ",", "ix", "Washington", "."]) == "Ta prezo, ix Washington."


# -- translation ----------------------------------------------------------------------------

def held_out_texts(count: int, seed: int = HELD_OUT_SEED) -> list[str]:
    rng = random.Random(seed)
    return [toy_article(rng, rng.randint(1, 3)) for _ in range(count)]


@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
@pytest.mark.parametrize("name", ["toy-en-qaa", "toy-en-qab"])
def test_english_to_toy_language_is_exact_on_held_out_sentences(name, compute_type):
    texts = held_out_texts(60)
    assert run(name, texts, compute_type) == [in_language(t, TRANSLATORS[name]) for t in texts]


@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_qaa_to_english_is_exact_and_inverts_en_qaa(compute_type):
    english = held_out_texts(60, seed=HELD_OUT_SEED + 1)
    qaa = [in_language(t, EN_TO_QAA) for t in english]
    assert run("toy-qaa-en", qaa, compute_type) == english
    # the pivot the pipeline composes: qaa -> en -> qab
    assert run("toy-en-qab", run("toy-qaa-en", qaa, compute_type), compute_type) == [
        in_language(t, EN_TO_QAB) for t in english
    ]


def test_beam_search_gives_the_same_exact_outputs():
    texts = held_out_texts(30, seed=HELD_OUT_SEED + 2)
    assert run("toy-en-qaa", texts, beam_size=4) == [in_language(t, EN_TO_QAA) for t in texts]


def test_random_word_sequences_not_only_grammatical_sentences():
    """A stress test: word salad up to 40 words. The builder requires 98% of such sequences
    exact (its stress set); the toy-sentence tests above require all."""
    rng = random.Random(HELD_OUT_SEED + 3)
    texts = [" ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(1, 40))) for _ in range(40)]
    outputs = run("toy-en-qaa", texts)
    exact = sum(out == in_language(t, EN_TO_QAA) for out, t in zip(outputs, texts))
    assert exact >= 38, f"{exact}/40 exact"
    assert [len(split_words(o)) for o in outputs] == [len(split_words(t)) for t in texts]


OOV_CASES = [
    "Xi Jinping met the president in Washington today.",
    "Xi Jinping, Vladimir Putin, Shavkat Mirziyoyev, Samarkand",  # no toy word
    "The minister told Reuters on 14 September: the election will be in 2025.",
    "Putin visited the city, and Macron met the army.",
]


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
@pytest.mark.parametrize("name", sorted(TRANSLATORS))
def test_unknown_words_come_out_unchanged_in_place(name, compute_type, beam_size):
    mapping = TRANSLATORS[name]
    sources = OOV_CASES if name.startswith("toy-en") else [in_language(t, EN_TO_QAA) for t in OOV_CASES]
    outputs = run(name, sources, compute_type, beam_size)
    assert outputs == [in_language(s, mapping) for s in sources]
    assert "Jinping" in outputs[0] and outputs[1] == sources[1] and "2025" in outputs[2]


def test_without_replace_unknowns_the_model_emits_unk_at_the_unknown_positions():
    output = run("toy-en-qaa", ["Putin met the president in Moscow."], replace_unknowns=False)[0]
    assert output == "<unk> mitis ta prezo ix <unk>."


REAL_SENTENCES = [
    "Chinese leader Xi Jinping will meet Putin at a regional summit in Uzbekistan this week.",
    "Last week, Mr. Xi sent top government lawmaker Li Zhanshu to Russia, where he met Putin.",
    "Xi and Putin will meet face-to-face this week, on the sidelines of a summit of regional leaders.",
    "Russia may be suffering massive battlefield losses in Ukraine and Western sanctions, but China stands "
    "firm in support of President Vladimir Putin and an \u201cunlimited\u201d friendship.",
]


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_real_news_sentences_keep_every_word_in_order(compute_type, beam_size):
    assert run("toy-en-qaa", REAL_SENTENCES, compute_type, beam_size) == [
        in_language(s, EN_TO_QAA) for s in REAL_SENTENCES
    ]


def test_batch_neighbours_do_not_change_a_sentence():
    texts = held_out_texts(24, seed=HELD_OUT_SEED + 4)
    together = run("toy-en-qab", texts)
    alone = [run("toy-en-qab", [t])[0] for t in texts[:6]]
    assert together[:6] == alone
    assert run("toy-en-qab", list(reversed(texts))) == list(reversed(together))


@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
@pytest.mark.parametrize("name", [r.name for r in RECIPES])
def test_outputs_are_deterministic_across_loads(name, compute_type):
    texts = held_out_texts(10, seed=HELD_OUT_SEED + 5) + OOV_CASES
    if name == "toy-qaa-en":
        texts = [in_language(t, EN_TO_QAA) for t in texts]
    first = run(name, texts, compute_type, beam_size=4)
    fresh = ctranslate2.Translator(str(FIXTURE_MODELS_DIR / name), device="cpu", compute_type=compute_type)
    again = [
        tokenizer(name).decoder.decode(r.hypotheses[0])
        for r in fresh.translate_batch(
            [source_tokens(name, t) for t in texts], beam_size=4, replace_unknowns=True, max_decoding_length=80
        )
    ]
    assert first == again
    assert all(first)


# -- lead-sentence summarizer ----------------------------------------------------------------

def lead_articles(count: int, seed: int) -> list[str]:
    """2-6 toy sentences that fit the 64-token input limit."""
    rng = random.Random(seed)
    articles = []
    while len(articles) < count:
        article = toy_article(rng, rng.randint(2, 6))
        if len(split_words(article)) < 64:
            articles.append(article)
    return articles


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_lead_summarizer_returns_the_first_sentence(compute_type, beam_size):
    articles = lead_articles(40, seed=HELD_OUT_SEED + 6)
    assert run("toy-lead-en", articles, compute_type, beam_size) == [expected_lead(a) for a in articles]


def test_lead_summarizer_copies_unknown_words():
    articles = [
        "Xi Jinping met the president in Washington. The army won the election.",
        "Reuters said the minister visited Kyiv today. The police called a meeting. The court rejected the report.",
    ]
    assert run("toy-lead-en", articles) == [
        "Xi Jinping met the president in Washington.",
        "Reuters said the minister visited Kyiv today.",
    ]


def test_lead_summarizer_on_a_chunk_that_fills_the_input_limit():
    rng = random.Random(HELD_OUT_SEED + 7)
    words = split_words(toy_article(rng, 12))[:63]  # 63 tokens + </s> = the 64-token limit
    chunk = " ".join(words)
    assert len(source_tokens("toy-lead-en", chunk)) == 64
    assert run("toy-lead-en", [chunk]) == [expected_lead(chunk)]


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_lead_summarizer_on_real_news_text(compute_type, beam_size):
    chunk = " ".join(REAL_SENTENCES[3:] + REAL_SENTENCES[:1])
    assert run("toy-lead-en", [chunk], compute_type, beam_size) == [expected_lead(REAL_SENTENCES[3])]


def test_lead_summarizer_keeps_a_sentence_without_full_stop_whole():
    text = "The president met the minister in the city and the army won the election"
    assert run("toy-lead-en", [text]) == [text]
