"""`python -m benchmarks.extraction [--dataset DIR] [--split test|dev|all] [--bootstrap N]`

How well babelwire reads articles, measured two ways (method and figures in BENCHMARKS.md,
"Reading articles"):

1. **HTML pages** — Scrapinghub's article-extraction benchmark (hand-made article bodies for
   real pages of 181 sites, MIT licence), scored with the dataset's own evaluate.py
   (vendored unchanged in benchmarks/extraction_scoring.py: token 4-gram shingles, F1 of the
   mean precision and recall over pages). The held-out **test** split is the pages whose id
   starts with b–f (58 pages, vendored gzipped in tests/data/extraction with the licence);
   the **dev** split (ids 0–a, 123 pages) is what choices were tuned on and needs the full
   dataset (`--dataset` pointing at a checkout of github.com/scrapinghub/article-extraction-benchmark).
   Side by side in the same run: babelwire's reader (`clean_input(html=...)`), trafilatura
   alone as the dataset's own runner calls it, a plain html-to-text baseline (lxml's
   text_content without scripts and styles), and that baseline followed by babelwire's
   plain-text cleaner (what a user without HTML input would get).
2. **Plain-text pages** — story text with the chrome real sites put around it, in several
   languages and scripts; each `<name>.expected.json` lists the story sentences and the
   chrome lines. Per language: the share of chrome lines gone and of story sentences kept,
   by `clean_article` on the plain text. tests/data/plaintext is the tuning set (en fr de es
   pt vi ru ja); tests/data/plaintext-heldout (en de es it fr ar zh, other sites' chrome)
   was written after the cleaner was frozen and is the figure for sites never seen.

Prints `RESULT <name> <value> <unit>` lines (stdout) and a table (stderr).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path
from typing import Callable

from benchmarks.common import ROOT, note, report
from benchmarks.extraction_scoring import evaluate

SLICE = ROOT / "tests" / "data" / "extraction"
PLAINTEXT = ROOT / "tests" / "data" / "plaintext"  # the tuning set
PLAINTEXT_HELDOUT = ROOT / "tests" / "data" / "plaintext-heldout"  # never tuned on
TEST_PREFIXES = tuple("bcdef")  # the held-out split (vendored); everything else is dev


def load_pages(dataset: Path, split: str) -> tuple[dict[str, str], dict[str, dict]]:
    """{id: html} and the ground truth for the pages of `split` found under `dataset`."""
    truth_all = json.loads((dataset / "ground-truth.json").read_text(encoding="utf-8"))
    pages: dict[str, str] = {}
    for path in sorted((dataset / "html").glob("*.html.gz")):
        item = path.name.split(".")[0]
        in_test = item.startswith(TEST_PREFIXES)
        if split == "all" or (split == "test") == in_test:
            with gzip.open(path, "rt", encoding="utf8") as fh:
                pages[item] = fh.read()
    if not pages:
        raise SystemExit(f"no {split} pages under {dataset} (the dev split needs --dataset: a checkout of the benchmark)")
    return pages, {k: truth_all[k] for k in pages}


def babelwire_reader(page: str) -> str:
    from pipeline.clean import clean_input

    cleaned = clean_input(None, None, html=page)
    return "\n\n".join(b.text for b in cleaned.blocks)


def trafilatura_alone(page: str) -> str:
    import trafilatura

    return trafilatura.extract(page, include_comments=False) or ""  # as the dataset's runner calls it


def html_to_text(page: str) -> str:
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(page)
    except Exception:  # lxml refuses some pages (empty documents): no text
        return ""
    for el in root.xpath("//script|//style|//noscript|//template"):
        el.drop_tree()
    return root.text_content()


def html_to_text_then_clean(page: str) -> str:
    from pipeline.clean import clean_article

    # the baseline's text keeps the page's line breaks; the cleaner reads lines as paragraphs
    cleaned = clean_article(None, html_to_text(page))
    return "\n\n".join(b.text for b in cleaned.blocks)


SYSTEMS: dict[str, Callable[[str], str]] = {
    "babelwire": babelwire_reader,
    "trafilatura": trafilatura_alone,
    "html_text": html_to_text,
    "html_text_then_babelwire_clean": html_to_text_then_clean,
}


def run_html(dataset: Path, split: str, n_bootstrap: int) -> dict[str, dict]:
    pages, truth = load_pages(dataset, split)
    note(f"article-extraction-benchmark, {split} split: {len(pages)} pages from {dataset}")
    scores: dict[str, dict] = {}
    for name, system in SYSTEMS.items():
        started = time.perf_counter()
        prediction = {item: {"articleBody": system(page)} for item, page in pages.items()}
        seconds = time.perf_counter() - started
        random.seed(0)  # the bootstrap deviations, reproducibly
        metrics = evaluate(truth, prediction, n_bootstrap)
        scores[name] = metrics
        note(
            f"{name:<32} F1 {metrics['f1']:.3f} ± {metrics['f1_std']:.3f}  precision {metrics['precision']:.3f}"
            f"  recall {metrics['recall']:.3f}  accuracy {metrics['accuracy']:.3f}  ({seconds:.1f} s)"
        )
        report(f"extraction_{split}_f1_{name}", metrics["f1"], "f1")
    report(
        f"extraction_{split}_f1_babelwire_minus_trafilatura",
        scores["babelwire"]["f1"] - scores["trafilatura"]["f1"], "f1",
    )
    return scores


def run_plaintext(folder: Path, label: str) -> dict[str, tuple[float, float]]:
    """Per language: (share of chrome lines gone, share of story sentences kept)."""
    from pipeline.article import article_from_text
    from pipeline.clean import clean_article

    per_lang: dict[str, list[int]] = {}  # lang → [chrome gone, chrome, sentences kept, sentences]
    for expected_path in sorted(folder.glob("*.expected.json")):
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
        page = (folder / expected["page"]).read_text(encoding="utf-8")
        article = article_from_text(page)
        cleaned = clean_article(article["title"], article["text"])
        counts = per_lang.setdefault(expected["lang"], [0, 0, 0, 0])
        kept_blocks = {b.text for b in cleaned.blocks}
        for line in expected["chrome"]:
            # a short line ("No", "Menu") is gone when no block is it; a longer one, when no
            # block contains it either (a bad paragraph join would hide it inside a block)
            gone = line not in kept_blocks and (len(line) < 20 or line not in cleaned.document)
            counts[0] += gone
            counts[1] += 1
            if not gone:
                note(f"{expected_path.name}: chrome kept: {line!r}")
        for sentence in expected["sentences"]:
            kept = cleaned.text.count(sentence) == 1
            counts[2] += kept
            counts[3] += 1
            if not kept:
                note(f"{expected_path.name}: story sentence lost: {sentence!r}")
    results = {}
    for lang, (gone, chrome, kept, sentences) in sorted(per_lang.items()):
        results[lang] = (gone / chrome if chrome else 1.0, kept / sentences if sentences else 1.0)
        note(f"plain text ({label}) {lang}: chrome gone {gone}/{chrome}, story sentences kept {kept}/{sentences}")
        report(f"plaintext_{label}_{lang}_chrome_gone", results[lang][0], "share")
        report(f"plaintext_{label}_{lang}_sentences_kept", results[lang][1], "share")
    report(f"plaintext_{label}_min_chrome_gone", min(r[0] for r in results.values()), "share")
    report(f"plaintext_{label}_min_sentences_kept", min(r[1] for r in results.values()), "share")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.extraction", description=__doc__.split("\n\n")[1])
    parser.add_argument("--dataset", type=Path, default=SLICE,
                        help="a checkout of the benchmark (default: the vendored test split)")
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the ± figures")
    parser.add_argument("--only", choices=("html", "plaintext"), help="one of the two measurements")
    args = parser.parse_args(argv)
    if args.only != "plaintext":
        run_html(args.dataset, args.split, args.bootstrap)
    if args.only != "html":
        run_plaintext(PLAINTEXT, "tuning")
        run_plaintext(PLAINTEXT_HELDOUT, "heldout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
