"""The CTranslate2 core of `models/`: store, tokenizers, loading/caching, translation and
summarization engines, routing. Real CTranslate2 models throughout (tiny random-weight
Marian checkpoints built here, and the project's trained toy models)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import ctranslate2
import pytest

from models.engines import ModelEngines
from models.loader import LoadOptions, ModelCache, resolve_compute_type
from models.exceptions import ManifestError, ModelNotFoundError
from models.manifest import Manifest, TokenizerSpec
from models.memory import DictMemory, memory_key
from models.store import ModelStore
from models.summarization import Seq2SeqSummarizer
from models.tokenizer import JsonTokenizer, load_tokenizer
from models.translation import ModelTranslation, PivotTranslation, TranslateOptions
from pipeline.engines import Summarizer, Translation
from pipeline.exceptions import NoModelError
from tests.checkpoints import build_marian, convert_checkpoint
from tests.models_core_helpers import LANGUAGE_TOKENS, install_marian, many_to_many, multi_target

TEXTS = [
    "The council approved the new budget on Tuesday evening.",
    "Heavy rain flooded several streets.",
    "Prices rose.",
    "Le conseil a approuvé le budget.",
]
GREEDY = TranslateOptions(beam_size=1, max_decoding_length=12)


@pytest.fixture(scope="session")
def marian(tmp_path_factory) -> tuple[Path, Path]:
    """(HF checkpoint, CTranslate2 conversion) of one random-weight multi-target Marian."""
    root = tmp_path_factory.mktemp("marian")
    checkpoint = build_marian(root / "hf", language_tokens=list(LANGUAGE_TOKENS.values()), seed=3)
    converted = convert_checkpoint(checkpoint, root / "ct2")
    return checkpoint, converted


@pytest.fixture
def install(marian, tmp_path):
    """install(name, **manifest_fields) -> Manifest, into the store at tmp_path/'store'."""
    checkpoint, converted = marian
    store_root = tmp_path / "store"
    store_root.mkdir()

    def _install(name: str, **fields) -> Manifest:
        return install_marian(converted, checkpoint, store_root, name, **fields)

    _install.root = store_root
    return _install


MB = 2**20


def install_sized(install, names, size_bytes: int = 3 * MB // 4) -> ModelStore:
    """Models of exactly `size_bytes` each (padding file), so budgets in MB are exact:
    with the default, one fits 1 MB and two fit 2 MB but three do not."""
    for name in names:
        install(name, pairs=[["en", "qaa"]])
        model_dir = install.root / name
        used = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
        assert used < size_bytes
        (model_dir / "padding.bin").write_bytes(bytes(size_bytes - used))
    return ModelStore(install.root)


def open_engines(root: Path, **kwargs) -> ModelEngines:
    kwargs.setdefault("compute_type", "float32")
    kwargs.setdefault("translate_options", GREEDY)
    return ModelEngines.open(root, **kwargs)


# --- store ---------------------------------------------------------------------------------


def test_store_without_a_directory_has_no_models(tmp_path):
    store = ModelStore(tmp_path / "absent")
    assert store.manifests() == []
    engines = ModelEngines.open(tmp_path / "absent")
    assert engines.summarizer("en") is None
    with pytest.raises(NoModelError):
        engines.translation("en", "de")


def test_store_lists_gets_sizes_and_removes(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]])
    install("mt-en-qab", pairs=[["en", "qab"]])
    store = ModelStore(install.root)
    assert [m.name for m in store.manifests()] == ["mt-en-qaa", "mt-en-qab"]
    assert store.get("mt-en-qab").translation_pairs() == {("en", "qab")}
    files = [f for f in (install.root / "mt-en-qaa").rglob("*") if f.is_file()]
    assert store.size_bytes("mt-en-qaa") == sum(f.stat().st_size for f in files) > 0
    store.remove("mt-en-qaa")
    assert store.names() == ["mt-en-qab"]
    assert not (install.root / "mt-en-qaa").exists()


def test_store_missing_model_names_the_pull_command(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"babelwire models pull opus-mt-en-de"):
        ModelStore(tmp_path).get("opus-mt-en-de")


@pytest.mark.parametrize("name", ["../etc", "/etc/passwd", "a/b", "..", ""])
def test_store_never_builds_a_path_outside_itself(tmp_path, name):
    store = ModelStore(tmp_path)
    with pytest.raises(ManifestError, match="invalid model name"):
        store.path(name)
    with pytest.raises(ManifestError):
        store.get(name)


def test_store_skips_broken_entries_and_reports_them(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]])
    (install.root / "broken").mkdir()
    (install.root / "broken" / "babelwire.json").write_text("{not json")
    renamed = install("mt-en-qab", pairs=[["en", "qab"]])
    data = renamed.to_dict() | {"name": "something-else"}
    (install.root / "mt-en-qab" / "babelwire.json").write_text(json.dumps(data))
    store = ModelStore(install.root)
    assert store.names() == ["mt-en-qaa"]
    problems = {p.path.name: p.error for p in store.problems()}
    assert set(problems) == {"broken", "mt-en-qab"}
    assert "not valid JSON" in problems["broken"]
    assert "differs from its directory" in problems["mt-en-qab"]


# --- tokenizers ----------------------------------------------------------------------------


def test_sentencepiece_tokens_match_the_hugging_face_marian_tokenizer(marian, install):
    from transformers import MarianTokenizer

    checkpoint, _ = marian
    manifest = install("mt-en-qab", **multi_target([("en", "qab")]))
    tokenizer = load_tokenizer(install.root / "mt-en-qab", manifest)
    hf = MarianTokenizer.from_pretrained(str(checkpoint))
    ours = tokenizer.encode(TEXTS)
    assert ours == [hf.convert_ids_to_tokens(hf(text).input_ids) for text in TEXTS]
    assert all(tokens[-1] == "</s>" for tokens in ours)
    assert tokenizer.count(TEXTS) == [len(t) - 1 for t in ours]  # specials not counted
    assert tokenizer.num_special_tokens == 1
    # decoding drops specials and language tokens and restores the text
    assert tokenizer.decode([[">>qab<<"] + t for t in ours]) == TEXTS


def _word_level_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {"<unk>": 0, "</s>": 1, "the": 2, "cat": 3, "sat": 4, ".": 5}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer.decoder = decoders.WordPiece(cleanup=True)
    tokenizer.add_special_tokens(["<unk>", "</s>"])
    tokenizer.save(str(path))
    return path


@pytest.mark.parametrize("keep_surface", [True, False])
def test_word_level_tokenizer_keeps_unknown_words_as_written(tmp_path, keep_surface):
    tokenizer = JsonTokenizer(
        _word_level_tokenizer(tmp_path / "tokenizer.json"),
        keep_unknown_surface=keep_surface,
        suffix=["</s>"],
    )
    tokens = tokenizer.encode(["the Zürich cat sat."])[0]
    unknown = "Zürich" if keep_surface else "<unk>"
    assert tokens == ["the", unknown, "cat", "sat", ".", "</s>"]
    # what replace_unknowns copies into the output comes back as the word itself
    assert tokenizer.decode([["the", "Zürich", "sat", ".", "</s>"]]) == ["the Zürich sat."]


def test_tokenizer_file_must_stay_inside_the_model(install):
    manifest = install("mt-en-qaa", pairs=[["en", "qaa"]])
    manifest.tokenizer = TokenizerSpec(type="sentencepiece", source="../../etc/passwd")
    with pytest.raises(ManifestError, match="inside the model"):
        load_tokenizer(install.root / "mt-en-qaa", manifest)


# --- loading and caching -------------------------------------------------------------------


def test_auto_compute_type_is_int8_on_cpu():
    assert resolve_compute_type("cpu", "auto") == "int8"
    assert resolve_compute_type("cpu", "float32") == "float32"
    # a type the device lacks falls back to one it has
    assert resolve_compute_type("cpu", "int8_float16") in ctranslate2.get_supported_compute_types("cpu")
    with pytest.raises(ValueError, match="device"):
        LoadOptions(device="tpu")


def test_cache_loads_each_model_once_across_threads(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]])
    cache = ModelCache(ModelStore(install.root), LoadOptions(compute_type="float32"))
    models, barrier = [], threading.Barrier(6)

    def get() -> None:
        barrier.wait()
        models.append(cache.get("mt-en-qaa"))

    threads = [threading.Thread(target=get) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in models}) == 1
    assert cache.load_stats()["mt-en-qaa"].loads == 1
    assert cache.load_stats()["mt-en-qaa"].last_load_seconds > 0


def test_cache_evicts_least_recently_used_past_the_budget(install):
    store = install_sized(install, ["mt-a", "mt-b", "mt-c"])
    assert store.size_bytes("mt-a") == 3 * MB // 4
    cache = ModelCache(store, LoadOptions(memory_mb=1))  # one model fits, two do not
    a = cache.get("mt-a")
    assert cache.loaded() == ["mt-a"]
    cache.get("mt-b")
    assert cache.loaded() == ["mt-b"]  # a evicted, the model being returned kept
    assert cache.get("mt-b") is cache.get("mt-b")
    a_again = cache.get("mt-a")
    assert a_again is not a and cache.loaded() == ["mt-a"]
    assert cache.load_stats()["mt-a"].loads == 2
    assert cache.load_stats()["mt-b"].loads == 1


def test_cache_keeps_recently_used_models_within_budget(install):
    store = install_sized(install, ["mt-a", "mt-b", "mt-c"])
    cache = ModelCache(store, LoadOptions(memory_mb=2))  # two models fit, three do not
    cache.get("mt-a")
    cache.get("mt-b")
    cache.get("mt-a")  # a is now the most recently used
    cache.get("mt-c")
    assert cache.loaded() == ["mt-a", "mt-c"]


def test_warm_up_loads_what_fits_the_budget(install):
    install_sized(install, ["mt-a", "mt-b", "mt-c"])
    engines = open_engines(install.root, memory_mb=2)
    assert engines.warm_up() == ["mt-a", "mt-b"]
    assert engines.loaded_models() == ["mt-a", "mt-b"]
    assert open_engines(install.root, memory_mb=64).warm_up() == ["mt-a", "mt-b", "mt-c"]


# --- routing -------------------------------------------------------------------------------


def test_routing_prefers_direct_then_many_to_many_then_pivot(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]])
    install("mt-en-mul", **multi_target([("en", "qaa"), ("en", "qab")]))
    install("mt-mul-mul", **many_to_many(["en", "qaa", "qab"]))
    install("mt-qac-en", pairs=[["qac", "en"]])
    engines = open_engines(install.root)

    route = engines.translation("en", "qaa")
    assert isinstance(route, ModelTranslation) and route.name == "mt-en-qaa"
    assert engines.translation("en", "qab").name == "mt-en-mul"  # one source: still direct
    assert engines.translation("qab", "qaa").name == "mt-mul-mul"
    pivot = engines.translation("qac", "qaa")
    assert isinstance(pivot, PivotTranslation)
    assert pivot.name == "mt-qac-en+mt-en-qaa"
    assert (pivot.source, pivot.target) == ("qac", "qaa")
    assert [leg.name for leg in pivot.legs] == ["mt-qac-en", "mt-en-qaa"]
    assert isinstance(pivot, Translation) and isinstance(route, Translation)
    # language codes are normalized as everywhere else
    assert engines.translation("EN", "qaa-x-toy").name == "mt-en-qaa"


def test_no_model_error_names_the_pair_and_the_pull_command(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]])
    engines = open_engines(install.root)
    with pytest.raises(NoModelError) as caught:
        engines.translation("en", "ja")
    assert str(caught.value) == "no translation model for en→ja (try: babelwire models pull opus-mt-en-jap)"
    assert (caught.value.source, caught.value.target) == ("en", "ja")
    # a pivot needs both legs
    with pytest.raises(NoModelError, match="qab→qaa"):
        engines.translation("qab", "qaa")


def test_a_manifest_without_the_needed_language_token_is_not_routed_to(install):
    fields = multi_target([("en", "qaa"), ("en", "qab")])
    fields["language_tokens"] = {"qaa": ">>qaa<<"}  # qab's token missing
    install("mt-en-mul", **fields)
    engines = open_engines(install.root)
    assert engines.translation("en", "qaa").name == "mt-en-mul"
    with pytest.raises(NoModelError):
        engines.translation("en", "qab")


# --- translation ---------------------------------------------------------------------------


def test_translation_matches_hugging_face_generate(marian, install):
    """Same weights, same greedy decoding: babelwire's CTranslate2 path gives exactly what
    transformers gives, so special and language tokens are placed as the model expects."""
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    checkpoint, _ = marian
    install("mt-en-mul", **multi_target([("en", "qaa"), ("en", "qab")]))
    engines = open_engines(install.root)
    route = engines.translation("en", "qab")
    ours = engines.translate([(route, TEXTS)])[0]

    hf_tokenizer = MarianTokenizer.from_pretrained(str(checkpoint))
    model = MarianMTModel.from_pretrained(str(checkpoint)).eval()
    theirs = []
    for text in TEXTS:  # one at a time: no padding effects on the reference
        inputs = hf_tokenizer([">>qab<< " + text], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=12)
        theirs.append(hf_tokenizer.decode(out[0], skip_special_tokens=True).strip())
    assert ours == theirs
    assert len(set(ours)) == len(ours)  # outputs depend on the input: the check has teeth
    # the wanted target's token changes the output
    assert engines.translate([(engines.translation("en", "qaa"), TEXTS)])[0] != ours


def test_one_batched_call_per_model_across_jobs_and_targets(install):
    install("mt-mul-mul", **many_to_many(["en", "qaa", "qab"]))
    engines = open_engines(install.root)
    to_qaa, to_qab = engines.translation("en", "qaa"), engines.translation("en", "qab")
    jobs = [(to_qaa, TEXTS[:2]), (to_qab, TEXTS), (to_qaa, [TEXTS[1], "", TEXTS[2]])]
    outputs = engines.translate(jobs)
    stats = engines.load_stats()["mt-mul-mul"]
    assert stats.batch_calls == 1
    assert stats.examples == 2 + 4 + 1  # identical (direction, sentence) pairs sent once
    assert [len(o) for o in outputs] == [2, 4, 3]
    assert outputs[2][1] == ""  # empty stays empty, in place
    assert outputs[2][0] == outputs[0][1]
    # each job alone gives the same sentences: nothing crosses between jobs
    for job, output in zip(jobs, outputs):
        assert engines.translate([job])[0] == output


def test_pivot_legs_share_calls_with_direct_jobs_one_call_per_model(install):
    install("mt-qaa-en", pairs=[["qaa", "en"]])
    install("mt-en-mul", **multi_target([("en", "qab"), ("en", "qac")]))
    engines = open_engines(install.root)
    pivot = engines.translation("qaa", "qab")
    assert pivot.name == "mt-qaa-en+mt-en-mul"
    jobs = [
        (engines.translation("en", "qac"), TEXTS[2:]),  # direct, on the pivot's second model
        (pivot, TEXTS[:2]),
        (engines.translation("qaa", "en"), TEXTS[:1]),  # direct, on the pivot's first model
    ]
    outputs = engines.translate(jobs)
    stats = engines.load_stats()
    # qaa→en for the pivot and the direct job first, then en→qab and en→qac together
    assert (stats["mt-qaa-en"].batch_calls, stats["mt-qaa-en"].examples) == (1, 2)
    assert (stats["mt-en-mul"].batch_calls, stats["mt-en-mul"].examples) == (1, 4)
    # a pivot is exactly its two legs composed
    first_leg = engines.translate([(pivot.first, TEXTS[:2])])[0]
    assert outputs[1] == engines.translate([(pivot.second, first_leg)])[0]
    assert outputs[2] == first_leg[:1]
    assert outputs[0] == engines.translate([jobs[0]])[0]


def test_routes_needing_each_others_models_in_crossed_order_still_translate(install):
    a = install("mt-a", pairs=[["qaa", "en"], ["en", "qaa"]])
    b = install("mt-b", **many_to_many(["en", "qab"]))
    engines = open_engines(install.root)
    one = PivotTranslation(ModelTranslation("qaa", "en", a), ModelTranslation("en", "qab", b))
    two = PivotTranslation(ModelTranslation("qab", "en", b), ModelTranslation("en", "qaa", a))
    together = engines.translate([(one, TEXTS[:2]), (two, TEXTS[2:])])
    assert together == [engines.translate([(one, TEXTS[:2])])[0], engines.translate([(two, TEXTS[2:])])[0]]


def test_translation_memory_is_consulted_before_the_model_and_filled_after(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]])
    memory = DictMemory()
    engines = open_engines(install.root, memory=memory)
    route = engines.translation("en", "qaa")
    first = engines.translate([(route, TEXTS)])[0]
    assert len(memory) == len(TEXTS)
    assert memory.get_many([memory_key("mt-en-qaa", "en", "qaa", TEXTS[0])]) == [first[0]]
    # spacing differences hit the same entry; no model call at all the second time
    again = engines.translate([(route, ["  " + t.replace(" ", "  ") for t in TEXTS])])[0]
    assert again == first
    assert engines.load_stats()["mt-en-qaa"].batch_calls == 1
    # what the memory holds is what comes out
    memory.set_many({memory_key("mt-en-qaa", "en", "qaa", "Prices rose."): "remembered"})
    assert engines.translate([(route, ["Prices rose."])]) == [["remembered"]]


def test_over_long_input_is_cut_to_the_model_limit_keeping_its_end_token(install):
    install("mt-en-qaa", pairs=[["en", "qaa"]], input_limit=16)
    engines = open_engines(install.root)
    long_text = " ".join(TEXTS * 10)
    assert engines.translate([(engines.translation("en", "qaa"), [long_text])])[0][0]


# --- summarization -------------------------------------------------------------------------


def test_summarizer_budget_counts_and_one_batched_call(install):
    install("sum-en", task="summarization", languages=["en"], input_limit=40)
    install("sum-t5-en", task="summarization", languages=["en", "qaa"], input_limit=40,
            source_prefix="summarize: ")
    engines = open_engines(install.root)
    summarizer = engines.summarizer("en")
    assert isinstance(summarizer, Seq2SeqSummarizer) and isinstance(summarizer, Summarizer)
    assert summarizer.name == "sum-en"  # the single-language model first
    assert summarizer.max_input_tokens == 40 - 1  # room for </s>
    prefixed = engines.summarizer("qaa")
    assert prefixed.name == "sum-t5-en"
    prefix_tokens = prefixed.count_tokens(["summarize: "])[0]
    assert prefix_tokens >= 2 and prefixed.max_input_tokens == 40 - 1 - prefix_tokens
    assert engines.summarizer("de") is None

    counts = summarizer.count_tokens(TEXTS)
    assert counts == [len(t) - 1 for t in engines.cache.tokenizer("sum-en").encode(TEXTS)]
    summaries = summarizer.summarize_batch(TEXTS + [" ".join(TEXTS * 5)], max_tokens=6)
    assert len(summaries) == 5 and all(isinstance(s, str) and s for s in summaries)
    stats = engines.load_stats()["sum-en"]
    assert (stats.batch_calls, stats.examples) == (1, 5)
    # the task prefix is part of the input: it changes what the model sees
    assert prefixed.summarize_batch(TEXTS, max_tokens=6) != summarizer.summarize_batch(TEXTS, max_tokens=6)


# --- every family drives its model as Hugging Face does --------------------------------------

# Per family: manifest fields, HF tokenizer kwargs, HF generate kwargs, config.json patch.
# The converter (CTranslate2 4.x) reads `normalize_before` from BART/PEGASUS configs, which
# transformers 5 no longer writes: the patch gives it the architecture's value.
FAMILIES = {
    "nllb": dict(
        manifest=dict(task="translation", sources=["en", "de"], targets=["en", "de"],
                      target_selection="prefix_token", source_language_token=True,
                      language_tokens={"en": "eng_Latn", "de": "deu_Latn"},
                      tokenizer=TokenizerSpec(type="tokenizer.json", file="tokenizer.json")),
        tokenizer={"src_lang": "eng_Latn"}, generate={"forced_bos": "deu_Latn"}, patch={},
    ),
    "bart": dict(
        manifest=dict(task="summarization", languages=["en"],
                      tokenizer=TokenizerSpec(type="tokenizer.json", file="tokenizer.json")),
        tokenizer={}, generate={"forced_bos_token_id": None}, patch={"normalize_before": False},
    ),
    "pegasus": dict(
        manifest=dict(task="summarization", languages=["en"],
                      tokenizer=TokenizerSpec(type="tokenizer.json", file="tokenizer.json")),
        tokenizer={}, generate={}, patch={"normalize_before": True, "normalize_embedding": False},
    ),
    "t5": dict(
        manifest=dict(task="summarization", languages=["en"], source_prefix="summarize: ",
                      tokenizer=TokenizerSpec(type="tokenizer.json", file="tokenizer.json")),
        tokenizer={}, generate={}, patch={},
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_special_tokens_and_outputs_match_hugging_face(family, tmp_path):
    """Tokens into CTranslate2 are exactly what the family's HF tokenizer gives the HF model,
    and greedy outputs are the same text as `generate` on the same random weights."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from tests.checkpoints_arch import BUILDERS

    spec = FAMILIES[family]
    checkpoint = BUILDERS[family](tmp_path / "hf", seed=5)
    config_file = checkpoint / "config.json"
    config_file.write_text(json.dumps(json.loads(config_file.read_text()) | spec["patch"]))
    store_root = tmp_path / "store"
    model_dir = convert_checkpoint(checkpoint, store_root / f"{family}-model")
    for f in checkpoint.iterdir():  # tokenizer files travel with the model
        if f.suffix in (".json", ".model", ".txt") and not (model_dir / f.name).exists():
            (model_dir / f.name).write_bytes(f.read_bytes())
    manifest = Manifest(name=f"{family}-model", family=family, input_limit=64, **spec["manifest"])
    manifest.save(model_dir)

    hf_tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), **spec["tokenizer"])
    model = AutoModelForSeq2SeqLM.from_pretrained(str(checkpoint)).eval()
    generate = dict(spec["generate"])
    if "forced_bos" in generate:
        generate["forced_bos_token_id"] = hf_tokenizer.convert_tokens_to_ids(generate.pop("forced_bos"))
    engines = ModelEngines.open(store_root, compute_type="float32",
                                translate_options=TranslateOptions(beam_size=1, max_decoding_length=8))
    texts = TEXTS[:3]
    if manifest.task == "translation":
        route = engines.translation("en", "de")
        tokenizer = engines.cache.tokenizer(route.name)
        ours_in = [route.source_tokens() + t for t in tokenizer.encode(texts)]
        ours_out = engines.translate([(route, texts)])[0]
        hf_texts = texts
    else:
        from models.summarization import SummarizeOptions

        engines.summarize_options = SummarizeOptions(beam_size=1, no_repeat_ngram_size=0)
        engines.refresh()
        summarizer = engines.summarizer("en")
        tokenizer = engines.cache.tokenizer(summarizer.name)
        hf_texts = [manifest.source_prefix + t for t in texts]
        ours_in = tokenizer.encode(hf_texts)
        ours_out = summarizer.summarize_batch(texts, max_tokens=8)

    theirs_in, theirs_out = [], []
    for text in hf_texts:
        ids = hf_tokenizer([text], return_tensors="pt").input_ids
        theirs_in.append(hf_tokenizer.convert_ids_to_tokens(ids[0]))
        with torch.no_grad():
            out = model.generate(input_ids=ids, num_beams=1, do_sample=False, max_new_tokens=9, **generate)
        start = 2 if "forced_bos_token_id" in generate and generate["forced_bos_token_id"] else 1
        theirs_out.append(hf_tokenizer.decode(out[0][start : start + 8], skip_special_tokens=True).strip())
    assert ours_in == theirs_in
    assert ours_out == theirs_out


def test_an_unusable_summarizer_entry_is_skipped(install):
    install("sum-a-broken", task="summarization", languages=["en"])
    install("sum-b", task="summarization", languages=["en"])
    (install.root / "sum-a-broken" / "source.spm").unlink()
    engines = open_engines(install.root)
    assert engines.summarizer("en").name == "sum-b"


def test_summarizer_decodes_with_the_generation_settings_of_its_manifest(install):
    install("sum-plain", task="summarization", languages=["en"])
    install("sum-norepeat", task="summarization", languages=["qaa"],
            generation={"no_repeat_ngram_size": 1, "beam_size": 2, "num_beams": 9})
    engines = open_engines(install.root)
    plain, norepeat = engines.summarizer("en"), engines.summarizer("qaa")
    assert (plain.options.beam_size, plain.options.no_repeat_ngram_size) == (4, 0)
    assert (norepeat.options.beam_size, norepeat.options.no_repeat_ngram_size) == (2, 1)
    repeated = [engines.cache.tokenizer("sum-plain").pieces(s) for s in plain.summarize_batch(TEXTS, 12)]
    unique = [engines.cache.tokenizer("sum-plain").pieces(s) for s in norepeat.summarize_batch(TEXTS, 12)]
    assert any(len(set(p)) < len(p) for p in repeated)  # this random model repeats itself
    assert all(len(set(p)) == len(p) for p in unique)


# --- the trained toy models: exact outputs ---------------------------------------------------


def _toy_helpers():
    from tests.fixtures import build_models

    return build_models


@pytest.fixture
def toy_engines(toy_models_dir):
    """Fresh engines over the committed toy models (call statistics are this test's own)."""
    return ModelEngines.open(toy_models_dir, compute_type="float32")


def _toy_sentences(count: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [_toy_helpers().toy_sentence(rng) for _ in range(count)]


def test_toy_translation_is_exact_and_keeps_unknown_words(toy_engines):
    bm = _toy_helpers()
    route = toy_engines.translation("en", "qaa")
    assert route.name == "toy-en-qaa"
    sentences = _toy_sentences(12, seed=1) + [
        "The president met Zelensky in Kyiv.",  # names the model has never seen
        "A new report , said Ms. Okonjo-Iweala today.",
    ]
    assert toy_engines.translate([(route, sentences)])[0] == [
        bm.expected_translation(s, bm.EN_TO_QAA) for s in sentences
    ]


@pytest.mark.parametrize("compute_type", ["auto", "int8"])
def test_toy_translation_is_exact_with_quantized_weights(toy_models_dir, compute_type):
    bm = _toy_helpers()
    engines = ModelEngines.open(toy_models_dir, compute_type=compute_type)
    assert engines.cache.compute_type == "int8"
    sentences = _toy_sentences(8, seed=2)
    assert engines.translate([(engines.translation("en", "qab"), sentences)])[0] == [
        bm.expected_translation(s, bm.EN_TO_QAB) for s in sentences
    ]


def test_toy_pivot_qaa_to_qab_goes_through_english(toy_engines):
    bm = _toy_helpers()
    english = _toy_sentences(6, seed=3)
    qaa = [bm.expected_translation(s, bm.EN_TO_QAA) for s in english]
    route = toy_engines.translation("qaa", "qab")
    assert route.name == "toy-qaa-en+toy-en-qab"
    title_route = toy_engines.translation("en", "qab")
    outputs = toy_engines.translate([(route, qaa), (title_route, english[:2])])
    assert outputs[0] == [bm.expected_translation(s, bm.EN_TO_QAB) for s in english]
    assert outputs[1] == outputs[0][:2]
    stats = toy_engines.load_stats()
    assert stats["toy-qaa-en"].batch_calls == 1
    # the pivot's second leg and the direct job share one call; the two shared
    # sentences are translated once
    assert (stats["toy-en-qab"].batch_calls, stats["toy-en-qab"].examples) == (1, 6)


def test_toy_many_articles_in_one_call_do_not_mix(toy_engines):
    import random

    bm = _toy_helpers()
    rng = random.Random(4)
    articles = [[bm.toy_sentence(rng) for _ in range(rng.randint(1, 4))] for _ in range(10)]
    route = toy_engines.translation("en", "qaa")
    outputs = toy_engines.translate([(route, sentences) for sentences in articles])
    assert outputs == [[bm.expected_translation(s, bm.EN_TO_QAA) for s in a] for a in articles]
    assert toy_engines.load_stats()["toy-en-qaa"].batch_calls == 1


def test_toy_lead_summarizer_is_exact_and_counts_tokens_like_the_model(toy_engines):
    import random

    bm = _toy_helpers()
    summarizer = toy_engines.summarizer("en")
    assert summarizer.name == "toy-lead-en"
    assert summarizer.max_input_tokens == 64 - 1  # room for </s>
    rng = random.Random(5)
    articles = [bm.toy_article(rng, rng.randint(1, 4)) for _ in range(8)]
    articles.append("Prime Minister Okafor met the president in Abuja. The report said.")
    assert summarizer.count_tokens(articles) == [len(bm.split_words(a)) for a in articles]
    fits = [a for a in articles if len(bm.split_words(a)) <= summarizer.max_input_tokens]
    assert summarizer.summarize_batch(fits, max_tokens=64) == [bm.expected_lead(a) for a in fits]
    assert toy_engines.load_stats()["toy-lead-en"].batch_calls == 1
