"""Cleaning: story sentences survive exactly once, chrome goes, punctuation debris is repaired.

Page fixtures live in tests/fixtures/pages/: each `<name>.expected.json` names its page (relative
to the repository root; the seed sample is a copy of the shared one, in tests/data/samples), the
title, every story sentence in order, the chrome that must be gone and the subheadings that must be
kept as structure (never as story sentences).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.article import article_from_text
from pipeline.clean import classify_paragraph, clean_article, repair_punctuation

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "fixtures" / "pages"
EXPECTED = sorted(PAGES.glob("*.expected.json"))


def load(expected_path: Path) -> tuple[dict, dict]:
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    page = (ROOT / expected["page"]).resolve()  # every page is in the repository
    return expected, article_from_text(page.read_text(encoding="utf-8"))


def squash(text: str) -> str:
    return " ".join(text.split())


def test_fixtures_cover_the_languages_of_issue_2():
    names = {p.name.split(".")[0] for p in EXPECTED}
    assert {"en", "fr", "de", "es", "vi", "seed-article"} <= names


@pytest.mark.parametrize("expected_path", EXPECTED, ids=lambda p: p.name.split(".")[0])
class TestPages:
    def test_every_story_sentence_is_there_once(self, expected_path):
        expected, article = load(expected_path)
        cleaned = clean_article(article["title"], article["text"])
        for sentence in expected["sentences"]:
            assert cleaned.text.count(sentence) == 1, sentence

    def test_nothing_but_the_story_is_left(self, expected_path):
        expected, article = load(expected_path)
        cleaned = clean_article(article["title"], article["text"])
        assert squash(cleaned.text) == squash(" ".join(expected["sentences"]))
        for piece in expected["chrome"] + expected["headings"]:
            assert piece not in cleaned.text, piece

    def test_subheadings_are_kept_as_structure(self, expected_path):
        expected, article = load(expected_path)
        cleaned = clean_article(article["title"], article["text"])
        assert cleaned.headings == expected["headings"]
        for heading in expected["headings"]:
            assert f"## {heading}" in cleaned.document
        for piece in expected["chrome"]:
            assert piece not in cleaned.document, piece

    def test_title(self, expected_path):
        expected, article = load(expected_path)
        assert clean_article(article["title"], article["text"]).title == expected["title"]

    def test_cleaning_twice_changes_nothing(self, expected_path):
        _, article = load(expected_path)
        once = clean_article(article["title"], article["text"])
        twice = clean_article(once.title, once.text)
        assert twice.text == once.text and twice.dropped == []

    def test_paragraphs_are_the_text(self, expected_path):
        _, article = load(expected_path)
        cleaned = clean_article(article["title"], article["text"])
        assert cleaned.text == "\n\n".join(cleaned.paragraphs)
        assert all(p and p == p.strip() for p in cleaned.paragraphs)


def test_seed_sample_drops_what_its_readme_lists():
    expected_path = PAGES / "seed-article.expected.json"
    _, article = load(expected_path)
    reasons = {text: reason for reason, text in clean_article(article["title"], article["text"]).dropped}
    assert reasons["China-Russia tighten bonds as Moscow sees losing battlefield in Ukraine"] == "repeated headline"
    assert reasons["Source link"] == reasons["Related Articles"] == reasons["Back to top button"] == "site chrome"
    repeat = "Brands, professor of global affairs at the Johns Hopkins School of Advanced International Studies."
    assert reasons[repeat] == "copy-paste repeat"
    by_reason = {reason for reason in reasons.values()}
    assert {"photo caption", "editor's note", "site promo"} <= by_reason


# --- one rule at a time ------------------------------------------------------------------

CHROME = [
    # site chrome, many languages
    ("Source link", "site chrome"),
    ("Related Articles", "site chrome"),
    ("Back to top button", "site chrome"),
    ("ADVERTISEMENT", "site chrome"),
    ("PUBLICITÉ", "site chrome"),
    ("Anzeige", "site chrome"),
    ("Weitere Artikel aus diesem Ressort", "site chrome"),
    ("Kommentare (12)", "site chrome"),
    ("Partager cet article", "site chrome"),
    ("Compartir en WhatsApp", "site chrome"),
    ("Tin liên quan", "site chrome"),
    ("Lire aussi : Le gouvernement présente son budget", "site chrome"),
    ("Lesen Sie auch: Was die Reform für Mieter bedeutet", "site chrome"),
    ("Tags: economy, ports, strikes", "site chrome"),
    # calls to action
    ("Sign up for our newsletter and get the day's news in your inbox.", "call to action"),
    ("Follow us on Facebook and X for the latest updates.", "call to action"),
    ("Inscrivez-vous à la newsletter de la rédaction.", "call to action"),
    ("Abonnieren Sie unseren Newsletter.", "call to action"),
    ("Suscríbete gratis a nuestro boletín diario.", "call to action"),
    ("Đăng ký nhận bản tin mỗi sáng.", "call to action"),
    # comment notices
    ("Comments are closed.", "comment notice"),
    ("Die Kommentarfunktion wurde deaktiviert.", "comment notice"),
    ("Los comentarios están cerrados.", "comment notice"),
    ("Gửi bình luận của bạn", "comment notice"),
    # editor's notes and feed credits
    ("(Reporting by Jane Doe; Editing by John Roe)", "editor's note"),
    ("[This article was automatically generated from a wire feed.]", "editor's note"),
    ("Note de la rédaction : cet article a été mis à jour.", "editor's note"),
    # captions and credits
    ("Protesters gather outside parliament on Monday. REUTERS/Jane Doe", "photo caption"),
    ("The minister arrives for the meeting. Photo: AFP", "photo caption"),
    ("Le ministre à l'Élysée, le 3 mars. (Photo : Ludovic Marin / AFP)", "photo caption"),
    ("Der Minister in Berlin. Foto: Kay Nietfeld/dpa", "photo caption"),
    ("Manifestantes en Madrid, este lunes. EFE/Juan Pérez", "photo caption"),
    ("Quang cảnh hội nghị - Ảnh 2", "photo caption"),
    ("Xi Jinping will meet Vladimir Putin this week. (File)", "photo caption"),
    ("© Getty Images", "photo caption"),
    # contact headers
    ("Hotline: 0912 345 678 | Email: toasoan@example.vn", "contact header"),
    ("Tel. +49 30 1234 5678 · E-Mail: redaktion@example.de", "contact header"),
    ("Đường dây nóng: 0243 123 4567", "contact header"),
    # bylines and timestamps
    ("By Jane Doe, Reuters", "byline"),
    ("Par Jean Dupont (AFP)", "byline"),
    ("Von Anna Schmidt", "byline"),
    ("Por María García", "byline"),
    ("Updated: 14 March 2024, 09:12 GMT", "byline"),
    ("Veröffentlicht am 12.03.2024 um 10:34 Uhr", "byline"),
    ("Cập nhật: 10:34 12/03/2024", "byline"),
    # site promos
    (
        "NewsDaily: the latest news, breaking news and hot news from around the world, updated 24/7.",
        "site promo",
    ),
    # shapes, in any language
    ("GMT+7", "timestamp"),
    ("10:34 (GMT+7)", "byline"),
    ("150 150 admin", "debris"),
    ("1 / 12", "debris"),
]


@pytest.mark.parametrize("line,reason", CHROME)
def test_chrome_line(line, reason):
    assert classify_paragraph(line) == reason


STORY = [
    "Users can subscribe to the app for $5 a month, the company said.",
    "Von den 20 Teilnehmern kamen zwölf aus Bayern, teilte der Verband mit.",
    "Par ailleurs, la mairie a annoncé un plan de 12 millions d'euros.",
    "Por la tarde, el Gobierno convocó una reunión de urgencia.",
    "Residents can call the council hotline on 0800 123 456 for advice on the flooding, officials said.",
    "Reuters reported that the talks had stalled over the weekend.",
    "The channel aired breaking news 24/7 during the first week of the war.",
    "Theo Bộ Công Thương, xuất khẩu tăng 12% trong tháng 2.",
    "Comments by the minister drew criticism from the opposition on Monday.",
    "He said he would share the report with lawmakers next week.",
    "Photographers waited outside the court for hours.",
    "The findings were published on March 3, 2024, in the journal Nature.",
]


@pytest.mark.parametrize("line", STORY)
def test_story_line_is_kept(line):
    assert classify_paragraph(line) is None


def test_headline_repeated_in_the_text_goes():
    title = "China-Russia Bond Tightens As Moscow Sees Battlefield Losses In Ukraine"
    assert classify_paragraph("China-Russia tighten bonds as Moscow sees losing battlefield in Ukraine", title) == (
        "repeated headline"
    )
    # a lead sentence that shares words with the title is story
    lead = "Russia may be suffering battlefield losses in Ukraine, but China stands firm in its support for Moscow."
    assert classify_paragraph(lead, title) is None


# --- repairs -----------------------------------------------------------------------------

REPAIRS = [
    # the sample README's debris
    ("Yun Sun said. , director of the China Program", "Yun Sun said, director of the China Program"),
    ("to isolate Russia over the war. war in Ukraine.", "to isolate Russia over the war in Ukraine."),
    ("President Xi assured him. that he supported", "President Xi assured him that he supported"),
    ("a supporter of its invasion. .", "a supporter of its invasion."),
    (
        "to “promote the order in the direction of fairness and harmony.” more reasonable”.",
        "to “promote the order in the direction of fairness and harmony more reasonable”.",
    ),
    # the same shapes, elsewhere
    ("the loss, . Then", "the loss. Then"),
    ("over the weekend , and rail", "over the weekend, and rail"),
    ("a, , b", "a, b"),
    ("( in Ukraine )", "(in Ukraine)"),
    ("sous l’effet de l’inflation .", "sous l’effet de l’inflation."),
    ("gab es. bis in den Nachmittag.", "gab es bis in den Nachmittag."),
]


@pytest.mark.parametrize("dirty,repaired", REPAIRS)
def test_repair(dirty, repaired):
    assert repair_punctuation(dirty) == repaired


UNTOUCHED = [
    "Joseph Torigian, a foreign policy expert in Washington, D.C., said so.",
    "Prices rose, e.g. for bread, and fell for milk.",
    "Fruit, vegetables etc. and dairy were affected.",
    "Die Preise stiegen z. B. bei Brot.",
    "Der Zug fuhr um 10.30 Uhr ab.",
    "« Que faire ? » demande-t-il.",
    "„Wir arbeiten daran“, sagte sie.",
    "»Wir arbeiten daran«, sagte sie.",
    "The company launched a new model. iPhone sales rose 5%.",
    "U.S. officials said so.",
    "Wait... and see.",
    "He said “yes.” Then he left.",
    "¿Qué pasará? Nadie lo sabe.",
]


@pytest.mark.parametrize("text", UNTOUCHED)
def test_repair_leaves_correct_text_alone(text):
    assert repair_punctuation(text) == text


def test_copy_paste_repeats_go_once_each():
    text = (
        "The port reopened on Monday after a week-long strike. "
        "The port reopened on Monday after a week-long strike.\n\n"
        "“It was a fair deal,” said Mira Olsen, secretary of the union. Olsen, secretary of the union.\n\n"
        "The port reopened on Monday after a week-long strike.\n\n"
        "Yes. Yes."
    )
    cleaned = clean_article(None, text)
    assert cleaned.paragraphs == [
        "The port reopened on Monday after a week-long strike.",
        "“It was a fair deal,” said Mira Olsen, secretary of the union.",
        "Yes. Yes.",  # too short to call a repeat: could be a quote
    ]
    assert [reason for reason, _ in cleaned.dropped] == ["copy-paste repeat"] * 3


def test_agency_attribution_is_stripped_and_the_paragraph_kept():
    cleaned = clean_article(None, "Bộ Nông nghiệp khuyến cáo nông dân không nên mở rộng diện tích. (Theo TTXVN)")
    assert cleaned.text == "Bộ Nông nghiệp khuyến cáo nông dân không nên mở rộng diện tích."


def test_hard_wrapped_lines_are_one_paragraph():
    cleaned = clean_article(None, "The council voted on Tuesday to\nbuild a new tram line.\nIt will open in 2027.")
    assert cleaned.paragraphs == ["The council voted on Tuesday to build a new tram line.", "It will open in 2027."]


def test_short_lines_are_kept_when_they_are_all_there_is():
    cleaned = clean_article("Brief", "Markets closed higher\nOil steady")
    assert cleaned.paragraphs == ["Markets closed higher", "Oil steady"]


def test_empty_text():
    cleaned = clean_article(None, "")
    assert (cleaned.title, cleaned.text, cleaned.paragraphs) == (None, "", [])


def test_entities_invisible_characters_and_odd_spaces():
    cleaned = clean_article("Title", "Tom &amp; Jerry\u00a0met in\u202fParis on Mon\u00adday, police said.\u200b")
    assert cleaned.text == "Tom & Jerry met in Paris on Monday, police said."


def test_title_loses_site_suffix_and_debris():
    cleaned = clean_article("Strike ends at port . | Daily Ledger", "Text here, said the union.")
    assert cleaned.title == "Strike ends at port."
    assert clean_article("  ", "Text.").title is None
    assert clean_article(None, "Text.").title is None
