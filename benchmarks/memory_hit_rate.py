"""`translation_memory_hit_rate`: how much of a news-like stream the Redis translation
memory answers, through the real pipeline.

The stream (seeded): every article carries a byline and an agency boilerplate line; one in
three is a re-send of a story from the last 40 (an update: same headline or an "UPDATE"
headline, the same lead, one new sentence appended), the rest are new stories. Articles go
through `process_batch` one at a time, as worker tasks do, on engines built by
`worker.runtime.build_engines` (toy models, targets qaa and qab) with the Redis memory on a
benchmark DB. What is translated is what babelwire translates: titles and summaries. The
figure is hits / lookups: the share of sentence translations the models did not have to do.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from benchmarks.common import SCALES, Scale, bench_redis_db, boilerplate_sentence, news_article, news_sentence, note, report
from benchmarks.service import Service, toy_models_dir

RESEND_SHARE = 1 / 3
RECENT_STORIES = 40


def news_stream(count: int, seed: int = 61) -> list[dict]:
    rng = random.Random(seed)
    stories: list[dict] = []
    stream: list[dict] = []
    for i in range(count):
        if stories and rng.random() < RESEND_SHARE:
            story = rng.choice(stories[-RECENT_STORIES:])
            title = story["title"] if rng.random() < 0.5 else f"UPDATE {rng.randint(1, 3)}-{story['title']}"
            text = f"{story['text']} {news_sentence(rng)}"
            article = {"title": title, "text": text}
        else:
            article = news_article(rng, rng.randint(5, 9))
            stories.append(article)
        article = {**article, "text": f"{article['text']} {boilerplate_sentence(rng)}", "id": f"s{i}"}
        stream.append(article)
    return stream


def run(scale: Scale, workdir: Path) -> None:
    from pipeline.article import validate_article
    from pipeline.process import process_batch
    from worker.runtime import build_engines

    stream = news_stream(scale.memory_stream_articles)
    with bench_redis_db() as redis_url:
        service = Service(workdir / "memory", redis_url, toy_models_dir(), settings={"translation_memory": "true"})
        settings = service.settings_object()
        engines = build_engines(settings)
        for article in stream:
            process_batch([validate_article(article, settings.limits)], engines)
        stats = engines.memory.stats()
    translated = sum(s.examples for name, s in engines.load_stats().items()
                     if engines.store.get(name).task == "translation")
    note(f"memory: {len(stream)} articles, {stats.hits + stats.misses} distinct (model, sentence) lookups, "
         f"{stats.hits} answered by the memory; {translated} sentences went to the translation models")
    report("translation_memory_hit_rate", stats.hit_rate, "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-memory-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
