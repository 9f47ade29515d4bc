"""The editors' review pages: escaping and login over HTTP, and the article page in a real
headless Chromium (Debian's `chromium`; .ci/run installs it) for a processed article."""

from __future__ import annotations

import random
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.api_server import ApiServerFactory, api_servers, wait_finished  # noqa: F401  (fixture)
from tests.conftest import WorkerFactory
from tests.fixtures.build_models import toy_article, toy_sentence

TOKEN = "review-token-0123456789"
HOSTILE_TITLE = '<script>alert("t")</script> Fish & <b>chips</b>'


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_review_pages_escape_everything_and_need_a_login(
    service_env: dict[str, str], api_servers: ApiServerFactory
) -> None:
    server = api_servers.start({**service_env, "BABELWIRE_API_TOKENS": TOKEN})
    article = {"id": "<img src=x onerror=alert(1)>", "title": HOSTILE_TITLE, "url": "javascript:alert(1)",
               "text": "A first sentence. A second sentence.", "lang": "en"}
    with server.client(TOKEN) as api:
        key = api.post("/v1/articles", json=article).json()["jobs"][0]["article_id"]

    with server.client(follow_redirects=False) as browser:
        for path in ("/", f"/articles/{key}"):
            page = browser.get(path)
            assert page.status_code == 401 and 'action="/login"' in page.text
        wrong = browser.post("/login", content=f"token=nope&next=/articles/{key}",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert wrong.status_code == 403 and "not valid" in wrong.text and "token" not in browser.cookies
        offsite = browser.post("/login", content=f"token={TOKEN}&next=//evil.example/",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert offsite.status_code == 303 and offsite.headers["location"] == "/"
        login = browser.post("/login", content=f"token={TOKEN}&next=/articles/{key}",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert login.status_code == 303 and login.headers["location"] == f"/articles/{key}"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie

        index = browser.get("/")  # the cookie from /login
        assert index.status_code == 200
        assert "default-src 'none'" in index.headers["content-security-policy"]
        for page in (index, browser.get(f"/articles/{key}")):
            assert page.status_code == 200
            assert "<script" not in page.text and "<b>chips" not in page.text and "<img" not in page.text
            assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; Fish &amp; &lt;b&gt;chips&lt;/b&gt;" in page.text
        article_page = browser.get(f"/articles/{key}").text
        assert 'href="javascript:' not in article_page and "javascript:alert(1)" in article_page  # shown, not linked
        assert "queued" in article_page
        assert f"/articles/{key}" in browser.get("/?status=queued").text
        assert "No jobs with status done" in browser.get("/?status=done").text
        assert browser.get("/?status=bogus").status_code == 422
        assert browser.get("/articles/nothing-here").status_code == 404
    with server.client(TOKEN) as bearer:  # a proxy may add the header instead of a login
        assert bearer.get("/").status_code == 200
    with server.client("wrong-token") as wrong_bearer:
        assert wrong_bearer.get("/").status_code == 403


class _Languages(HTMLParser):
    """Text of each `<section data-lang=...>` of the article page, and of `#cleaned`."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.cleaned = ""
        self._stack: list[tuple[str, str | None]] = []  # (tag, what it collects for)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("data-lang"):
            target: str | None = f"lang:{a['data-lang']}"
        elif a.get("id") == "cleaned":
            target = "cleaned"
        else:
            target = self._stack[-1][1] if self._stack else None
        if tag not in ("br", "img", "meta", "link", "input"):
            self._stack.append((tag, target))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        target = self._stack[-1][1] if self._stack else None
        if target == "cleaned":
            self.cleaned += data + " "
        elif target:
            lang = target.split(":", 1)[1]
            self.sections[lang] = self.sections.get(lang, "") + data + " "


def _squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_article_page_in_chromium_shows_every_language_side_by_side(
    tmp_path: Path, service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory,
    api_servers: ApiServerFactory,
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium missing: apt-get install -y chromium (.ci/run does)"
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa,qab"}
    workers.start(env, "--pool", "solo")
    server = api_servers.start(env)
    rng = random.Random(11)
    article = {"id": "review-1", "title": toy_sentence(rng).rstrip("."), "text": toy_article(rng, 6), "lang": "en"}
    with server.client() as client:
        job_id = client.post("/v1/articles", json=article).json()["jobs"][0]["job_id"]
        result = wait_finished(client, job_id)["result"]
    assert result["status"] == "done" and set(result["summary"]) == {"en", "qaa", "qab"}

    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", f"{server.url}/articles/review-1"],
        capture_output=True, text=True, timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _Languages()
    page.feed(dom.stdout)
    assert list(page.sections) == ["en", "qaa", "qab"]  # the source first, then the targets as asked
    for lang in ("en", "qaa", "qab"):
        shown = _squash(page.sections[lang])
        assert _squash(result["title"][lang]) in shown, lang
        assert _squash(result["summary"][lang]) in shown, lang
    assert "toy-lead-en" in page.sections["en"]  # the summarizer, in the source column
    assert "toy-en-qaa" in page.sections["qaa"] and "toy-en-qab" in page.sections["qab"]
    assert _squash(article["text"]).split(".")[0] in _squash(page.cleaned)
    index = httpx.get(f"{server.url}/?status=done").text
    assert "/articles/" + result["article_id"] in index
