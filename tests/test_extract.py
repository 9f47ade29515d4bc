"""HTML in: the reader (pipeline/extract.py), the schema's `html` field, every entry point that
reads files, and bad input — broken markup, a 5 MB page, nesting 10,000 deep, a page with no
article, scripts and styles only, a non-UTF-8 page, HTML pasted into `text`, `html` and `text`
together. Each gives a clean result or an error naming the field; no output ever holds a tag
or an entity.

The real pages are from Scrapinghub's article-extraction benchmark (tests/data/extraction,
MIT licence)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.article import Limits, validate_article
from pipeline.exceptions import ArticleError
from pipeline.clean import clean_input
from pipeline.extract import (
    HEADING, ITEM, PARAGRAPH, QUOTE, decode_html, extract_html, looks_like_html, scrub_markup, strip_tags,
)
from pipeline.process import prepare, process
from worker.inputs import read_inputs

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "data" / "extraction" / "html"
TRUTH = json.loads((ROOT / "tests" / "data" / "extraction" / "ground-truth.json").read_text(encoding="utf-8"))
# A Reuters story on VentureBeat-like markup would do; these are three real article pages.
REAL_PAGES = sorted(PAGES.glob("*.html.gz"))[:3]

TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});")


def assert_no_markup(value: Any, where: str = "output") -> None:
    """No `<tag>` and no `&entity;` anywhere in a string, a list or a dict (keys too)."""
    if isinstance(value, str):
        assert not TAG.search(value), f"{where}: tag {TAG.search(value).group()!r} in {value[:200]!r}"
        assert not ENTITY.search(value), f"{where}: entity {ENTITY.search(value).group()!r} in {value[:200]!r}"
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_no_markup(k, where)
            assert_no_markup(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            assert_no_markup(v, f"{where}[{i}]")


def real_page(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf8") as fh:
        return fh.read()


def clean_view(html: str) -> dict[str, Any]:
    """What `babelwire clean --json` shows for an article given as html."""
    p = prepare(validate_article({"html": html}))
    return {
        "title": p.cleaned.title, "text": p.cleaned.text, "sentences": p.sentences, "headings": p.cleaned.headings,
        "document": p.cleaned.document,
        "metadata": p.cleaned.extracted.metadata() if p.cleaned.extracted else {},
    }


# --- the reader on real pages ---------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_PAGES, ids=lambda p: p.name[:8])
def test_real_page_gives_body_and_metadata_without_markup(path):
    page = real_page(path)
    extracted = extract_html(page)
    assert extracted.method == "page" and extracted.title and extracted.blocks
    truth = TRUTH[path.name.split(".")[0]]["articleBody"]
    first_words = " ".join(truth.split()[:6])
    assert first_words in " ".join(extracted.text.split())  # the story's opening is there
    view = clean_view(page)
    assert view["sentences"] and view["title"]
    assert_no_markup(view)


def test_metadata_of_a_whole_page():
    page = """<!doctype html><html lang="de-DE"><head><title>Streik beendet | Hafenblatt</title>
    <meta property="og:title" content="Streik im Hafen beendet">
    <meta name="author" content="Jonas Weber"><link rel="canonical" href="https://example.org/streik">
    <meta property="article:published_time" content="2024-03-12T18:45:00+01:00">
    <meta property="og:site_name" content="Hafenblatt"></head><body><nav><a href="/">Start</a></nav>
    <article><h1>Streik im Hafen beendet</h1>
    <p>Die Hafenarbeiter haben am Mittwoch nach einer Woche ihren Streik beendet, wie die Gewerkschaft mitteilte.</p>
    <h2>Lohn steigt um sechs Prozent</h2>
    <p>Der Tarifvertrag sieht eine Erhöhung der Löhne um sechs Prozent in diesem Jahr vor, sagte ein Sprecher.</p>
    <blockquote><p>„Das ist ein fairer Abschluss“, sagte die Sekretärin der Gewerkschaft am Abend.</p></blockquote>
    <ul><li>Nachtzuschläge steigen ebenfalls deutlich an.</li><li>Die Laufzeit beträgt zwei Jahre.</li></ul>
    <p>Die Reedereien hatten zuvor Schiffe in andere Häfen umgeleitet, um Verzögerungen zu vermeiden.</p>
    </article><footer>© Hafenblatt</footer></body></html>"""
    extracted = extract_html(page)
    meta = extracted.metadata()
    assert meta["author"] == "Jonas Weber" and meta["url"] == "https://example.org/streik"
    assert meta["date"] == "2024-03-12" and meta["site"] == "Hafenblatt" and meta["lang"] == "de"
    assert meta["title"] == "Streik im Hafen beendet"
    kinds = {b.text: b.kind for b in extracted.blocks}
    assert kinds["Lohn steigt um sechs Prozent"] == HEADING
    assert kinds["„Das ist ein fairer Abschluss“, sagte die Sekretärin der Gewerkschaft am Abend."] == QUOTE
    assert kinds["Die Laufzeit beträgt zwei Jahre."] == ITEM
    cleaned = clean_input(None, None, html=page)
    assert cleaned.headings == ["Lohn steigt um sechs Prozent"]
    assert "## Lohn steigt um sechs Prozent" in cleaned.document
    assert "> „Das ist ein fairer Abschluss“" in cleaned.document and "- Die Laufzeit" in cleaned.document
    assert "Lohn steigt" not in cleaned.text  # a subheading is structure, never a story sentence
    assert "Start" not in cleaned.document and "©" not in cleaned.document


def test_fragment_keeps_every_block_with_its_kind():
    fragment = ("<h2>Talks &amp; strikes</h2><p>First paragraph of the story, with <b>bold</b> and "
                "<a href='x'>a link</a>.</p><ul><li>one item</li><li>two items</li></ul>"
                "<blockquote>A quote from somebody important.</blockquote><table><tr><td>1</td><td>Kyle</td></tr></table>")
    extracted = extract_html(fragment)
    assert extracted.method == "fragment"
    assert [(b.kind, b.text) for b in extracted.blocks] == [
        (HEADING, "Talks & strikes"),
        (PARAGRAPH, "First paragraph of the story, with bold and a link."),
        (ITEM, "one item"), (ITEM, "two items"),
        (QUOTE, "A quote from somebody important."),
        (PARAGRAPH, "1 Kyle"),
    ]


def _chunked_page(*, bio: bool = False) -> str:
    """A story split in two containers of the same shape with an ad rail between them (as
    WIRED lays out its pages): trafilatura alone reads the first container only."""
    halves = (
        [f"Paragraph {i}: the city council met on Tuesday evening to debate the budget for the coming year, and the "
         "members of the finance committee argued over the cost of the new bridge for more than three hours." for i in range(6)],
        [f"Paragraph {i}: after the break the mayor told the council that the bridge would be paid for by the regional "
         "fund, and the opposition said that the plan left the schools without the money they had been promised." for i in range(6, 12)],
    )
    chunks = "".join(
        '<div class="grid"><div class="body body__container article__body">' + "".join(f"<p>{p}</p>" for p in half)
        + '</div><div class="ad-rail">Advertisement</div></div>' for half in halves
    )
    about = ('<div class="grid"><div class="body body__container article__body"><p>Jane Doe is a reporter who has '
             "covered the city council and its budgets for the paper since the year two thousand and twelve.</p></div></div>"
             if bio else "")
    return (
        '<html><head><title>Budget vote</title></head><body><nav><a href="/">Home</a> <a href="/news">News</a></nav>'
        f'<main><article><h1>Budget vote</h1><div class="article__chunks">{chunks}{about}'
        '<aside class="newsletter"><h3>Get our newsletter</h3><p>Sign up for the morning briefing.</p></aside>'
        '<div class="related"><h3>Related</h3><ul><li><a href="/a">Storm hits coast</a></li></ul></div>'
        "</div></article></main><footer><p>© 2024 The Daily. All rights reserved.</p></footer></body></html>"
    )


def test_a_body_split_over_several_containers_is_read_whole():
    extracted = extract_html(_chunked_page())
    texts = [b.text for b in extracted.blocks]
    # both halves, in page order, and none of the page's chrome between or after them
    assert [t.split(":")[0] for t in texts if t.startswith("Paragraph")] == [f"Paragraph {i}" for i in range(12)]
    assert not any(word in extracted.text for word in ("Advertisement", "newsletter", "Storm hits", "reserved", "Home"))


def test_a_lone_paragraph_after_the_story_is_not_taken_from_the_second_opinion():
    # one paragraph past the end (an author's bio) is no second half of a story
    extracted = extract_html(_chunked_page(bio=True))
    assert "Paragraph 11" in extracted.text and "Jane Doe" not in extracted.text


def test_an_embedded_post_inside_the_story_is_kept_as_a_quote_in_its_place():
    story = [f"Paragraph {i}: the state launched its new slogan on Monday, and by the evening a great many people on "
             "social media had pointed out what was wrong with the words the agency had chosen." for i in range(8)]
    post = ('<div class="embed"><blockquote class="twitter-tweet"><p lang="en">Yes this is real and the state spent half '
            'a million dollars on it: <a href="https://t.co/x">https://t.co/Nc0nKoXGBP</a></p>— Dianna Anderson '
            '(@dianna) <a href="https://twitter.com/x">November 18, 2019</a></blockquote></div>')
    body = "".join(f"<p>{p}</p>" for p in story[:4]) + post + "".join(f"<p>{p}</p>" for p in story[4:])
    page = ('<html><head><title>Slogan</title></head><body><main><article><h1>Slogan</h1><div class="story">'
            f'<div class="story-body">{body}</div></div></article></main></body></html>')
    blocks = extract_html(page).blocks
    at = next(i for i, b in enumerate(blocks) if "half a million dollars" in b.text)
    assert blocks[at].kind == QUOTE
    assert blocks[at - 1].text.startswith("Paragraph 3:") and blocks[at + 2].text.startswith("Paragraph 4:")
    assert_no_markup([b.text for b in blocks])


# --- detecting, decoding and scrubbing ---------------------------------------------------------


@pytest.mark.parametrize("text,is_html", [
    ("<p>One.</p><p>Two.</p>", True),
    ("<!DOCTYPE html><html><body>x</body></html>", True),
    ("He said 3 < 4 and 5 > 2, which nobody doubted.", False),
    ("The <b>bold</b> word.", True),  # an inline fragment reads the same either way
    ("One stray <br> in prose.", False),  # one tag: prose with a slip, scrubbed by the cleaner
    ("Plain text.", False),
])
def test_looks_like_html(text, is_html):
    assert looks_like_html(text) is is_html


def test_scrub_markup_leaves_no_tag_or_entity():
    dirty = "Tom &amp;amp; Jerry &lt;b&gt;bold&lt;/b&gt; &nbsp;x <br/> y &amp;amp;amp;lt; <!-- c --> z"
    clean = scrub_markup(dirty)
    assert_no_markup(clean)
    assert "Tom & Jerry" in clean and "bold" in clean


def test_strip_tags_is_a_linear_scan_that_keeps_visible_text():
    page = "<p>a<script>if (a < b) { x = '</p>'; }</script>b</p><style>p{}</style><!-- gone -->c &amp; d<div>e"
    assert strip_tags(page).split("\n") == ["ab", "c & d", "e"]
    assert strip_tags("<p>unclosed <script>var x = 1;") == "unclosed"
    assert strip_tags("a < b, said he") == "a < b, said he"


def test_decode_html_follows_the_meta_charset():
    page = '<html><head><meta charset="windows-1252"></head><body><p>Café crème à Noël.</p></body></html>'
    assert "Café crème à Noël." in decode_html(page.encode("cp1252"))
    old_style = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=shift_jis"></head>'
                 '<body><p>札幌市は除雪予算を発表した。</p></body></html>')
    assert "札幌市は除雪予算を発表した。" in decode_html(old_style.encode("shift_jis"))
    assert decode_html("<p>naïve</p>".encode()) == "<p>naïve</p>"  # UTF-8 without a declaration
    assert decode_html(b"\xef\xbb\xbf<p>x</p>") == "<p>x</p>"  # a byte-order mark wins


# --- the schema ----------------------------------------------------------------------------------


def test_html_or_text_but_not_both():
    with pytest.raises(ArticleError) as err:
        validate_article({"text": "A story.", "html": "<p>A story.</p>"})
    assert err.value.field == "html" and "not both" in err.value.message
    with pytest.raises(ArticleError) as err:
        validate_article({"html": "  "})
    assert err.value.field == "html"
    with pytest.raises(ArticleError) as err:
        validate_article({"title": "No body"})
    assert err.value.field == "text"
    article = validate_article({"text": "", "html": "<p>A story.</p>"})  # an empty CSV cell beside it
    assert article.text is None and article.html == "<p>A story.</p>"


def test_size_limit_applies_to_the_html_as_sent():
    page = "<p>" + "x" * 2_000 + "</p>"
    with pytest.raises(ArticleError) as err:
        validate_article({"html": page}, Limits(max_html_chars=1_000))
    assert err.value.field == "html" and "1,000" in err.value.message and "2,007" in err.value.message
    assert validate_article({"html": page}, Limits(max_html_chars=3_000)).html == page


def test_html_articles_have_their_own_key_and_text_keys_do_not_change():
    text = validate_article({"title": "T", "text": "Body."})
    html = validate_article({"title": "T", "html": "<p>Body.</p>"})
    assert text.key != html.key
    assert validate_article({"title": "T", "html": "<p>Body.</p>  "}).key == html.key
    # a text article's key is what it always was: the html field adds to the payload only when given
    payload = {"title": "T", "text": "Body.", "lang": None, "targets": [], "summary": text.summary.model_dump()}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    assert text.key == hashlib.sha256(blob).hexdigest()[:32]


# --- bad input: a clean result or an error naming the field, never markup, never a crash ----------

STORY = "".join(
    f"<p>Paragraph {i}: the council met on Tuesday to discuss item {i} of the budget, officials said.</p>"
    for i in range(12)
)


def test_broken_markup():
    broken = ("<html><body><div><p>The council met on <b>Tuesday <i>to discuss the budget</p> for the coming "
              "year, officials said.</div></span><p>Unclosed paragraph about the vote that followed the debate,"
              " which the mayor won.<p>Another &amp unterminated entity &copy and <a href=x>link")
    view = clean_view(broken)
    assert "to discuss the budget" in view["text"] and "the mayor won" in view["text"]
    assert_no_markup(view)


def test_five_megabyte_page():
    blob = "<script>window.__DATA__ = {\"k\": \"" + "x" * 4_900_000 + "\"}</script>"
    page = f"<html><head><title>Budget vote</title>{blob}</head><body><nav><a href='/'>Home</a></nav><article>{STORY}</article></body></html>"
    assert len(page) > 4_900_000
    with pytest.raises(ArticleError) as err:  # over the default limit: refused, naming the field
        validate_article({"html": page})
    assert err.value.field == "html" and "2,000,000" in err.value.message
    p = prepare(validate_article({"html": page}, Limits(max_html_chars=6_000_000)))  # allowed: read whole
    assert len(p.cleaned.paragraphs) == 12 and p.cleaned.title == "Budget vote"
    assert_no_markup([p.cleaned.text, p.cleaned.title, p.sentences])


@pytest.mark.parametrize("wrapper", ["page", "fragment"])
def test_tags_nested_ten_thousand_deep(wrapper):
    deep = "<div>" * 10_000 + STORY + "</div>" * 10_000
    page = f"<html><body>{deep}</body></html>" if wrapper == "page" else deep
    view = clean_view(page)
    assert "Paragraph 0: the council met" in view["text"] and "Paragraph 11:" in view["text"]
    assert_no_markup(view)


def test_page_with_no_article_fails_naming_the_html_field(tmp_path):
    page = ("<html><head><title>Home</title></head><body><nav><a href='/'>Home</a> <a href='/news'>News</a>"
            "</nav><footer>© 2024</footer></body></html>")
    result = process(validate_article({"html": page}), engines=_no_models(tmp_path))
    assert result.status == "failed" and result.errors == {"html": "no article text found in the page"}
    assert_no_markup(result.to_dict())


def test_scripts_and_styles_only(tmp_path):
    page = "<html><head><style>body{color:red}</style><script>var a = '<p>x</p>';</script></head><body><script>alert('<b>')</script></body></html>"
    view = clean_view(page)
    assert view["text"] == "" and view["sentences"] == []
    result = process(validate_article({"html": page}), engines=_no_models(tmp_path))
    assert result.status == "failed" and "html" in result.errors
    assert_no_markup(result.to_dict())


def test_html_pasted_into_text_is_read_as_html():
    pasted = validate_article({"title": "Budget", "text": STORY})
    as_html = validate_article({"title": "Budget", "html": STORY})
    assert prepare(pasted).cleaned.text == prepare(as_html).cleaned.text
    assert_no_markup(prepare(pasted).sentences)
    stray = prepare(validate_article({"text": "The <b>council</b> met on Tuesday &amp; voted, officials said."}))
    assert stray.cleaned.text == "The council met on Tuesday & voted, officials said."


# --- files: .html/.htm, folders, CSV and JSONL ------------------------------------------------------


def test_html_files_folders_csv_and_jsonl(tmp_path):
    cp1252 = '<html><head><meta charset="windows-1252"><title>Café</title></head><body><p>Le café a rouvert à Noël, a annoncé la mairie mardi.</p></body></html>'
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "a.html").write_bytes(cp1252.encode("cp1252"))
    (tmp_path / "pages" / "b.htm").write_text("<p>Second page.</p><p>Two paragraphs.</p>", encoding="utf-8")
    (tmp_path / "pages" / "c.txt").write_text("Title\n\nPlain text body.", encoding="utf-8")
    records = list(read_inputs(str(tmp_path / "pages")))
    assert [sorted(r.data) for r in records] == [["html"], ["html"], ["text", "title"]]
    assert "Le café a rouvert à Noël" in records[0].data["html"]  # decoded by its meta charset
    single = list(read_inputs(str(tmp_path / "pages" / "a.html")))
    assert single[0].data == records[0].data

    with (tmp_path / "a.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "html"])
        writer.writerow(["x1", "<p>From a CSV cell.</p><p>Second.</p>"])
    assert [r.data for r in read_inputs(str(tmp_path / "a.csv"))] == [
        {"id": "x1", "html": "<p>From a CSV cell.</p><p>Second.</p>"}
    ]
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "j1", "html": "<p>x</p>"}) + "\n", encoding="utf-8")
    assert [r.data for r in read_inputs(str(tmp_path / "a.jsonl"))] == [{"id": "j1", "html": "<p>x</p>"}]


def _no_models(tmp_path: Path):
    from worker.config import Settings
    from worker.runtime import build_engines

    return build_engines(Settings(models_dir=tmp_path / "empty-store", translation_memory=False))


# --- the CLI on real article pages -------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_PAGES, ids=lambda p: p.name[:8])
def test_cli_clean_and_process_on_real_pages(path, tmp_path, cli_in_process, toy_models_dir):
    page = tmp_path / "page.html"
    page.write_bytes(gzip.open(path).read())
    env = {"BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TRANSLATION_MEMORY": "false"}
    cleaned = cli_in_process(["clean", str(page), "--json"], env)
    assert cleaned.returncode == 0, cleaned.stderr
    view = json.loads(cleaned.stdout)
    assert view["sentences"] and view["metadata"]["method"] == "page"
    assert view["lang"] in {"en", "pt"}  # the three pages: two English stories, one Portuguese
    assert view["title"] == view["metadata"]["title"]
    assert_no_markup(view, "clean --json")

    processed = cli_in_process(["process", str(page), "--to", "qaa", "--json"], env)
    assert processed.returncode == 0, processed.stderr
    result = json.loads(processed.stdout)
    assert result["status"] in {"done", "partial"} and result["summary"][view["lang"]]
    if view["lang"] == "en":  # the toy models translate English only
        assert result["status"] == "done" and result["summary"]["qaa"]
    assert result["title"][view["lang"]] == view["title"]
    assert_no_markup(result, "process --json")


# --- hostile markup: never a crash, never markup out (speed is tests/test_pipeline_scaling.py's) -----

HOSTILE_UNITS = ["<!--", "<a ", "<div>", "</p>", "&amp;", "&#x", "<script>", "<", "<<>>", "<p>x", "<b>y</b>",
                 "<html>", "<![CDATA[", "<?xml ", "\0", "<p>Ünïcödé &eacute;</p>"]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_markup_of_64k_characters(unit):
    text = (unit * (64_000 // len(unit) + 1))[:64_000]
    for cleaned in (clean_input(None, None, html=text), clean_input(None, text)):
        assert_no_markup([cleaned.text, cleaned.title, cleaned.document, cleaned.headings])


# --- the reading benchmark runs from a fresh clone and holds its figures ---------------------------


def test_extraction_benchmark_figures(capsys):
    from benchmarks import extraction

    assert extraction.main(["--bootstrap", "5"]) == 0
    results = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("RESULT "):
            _, name, value, _unit = line.split()
            results[name] = float(value)
    # quality guards at the figures BENCHMARKS.md reports (not speed): held-out pages only
    assert results["extraction_test_f1_babelwire"] >= 0.95
    assert results["extraction_test_f1_babelwire"] >= results["extraction_test_f1_trafilatura"]
    assert results["extraction_test_f1_babelwire"] > results["extraction_test_f1_html_text_then_babelwire_clean"] + 0.1
    assert results["plaintext_heldout_min_sentences_kept"] == 1.0
    assert results["plaintext_tuning_min_sentences_kept"] == 1.0
    assert results["plaintext_tuning_min_chrome_gone"] >= 0.95
