"""Webhooks: the outbox written with the result, the dispatcher's attempts, signatures, the
result queue, the CLI. Real SQL store (SQLite and PostgreSQL), real Redis, a real receiver on
127.0.0.1; every connection a test makes is held to 127.0.0.1 (`only_loopback`)."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from pipeline.article import validate_article
from pipeline.result import DONE, Result
from tests.webhooks_support import ConnectionLog, LoopbackReceiver, Reply, StubResolver, guard_connections
from worker.delivery.dispatcher import Dispatcher, DispatchOptions, retry_delay
from worker.delivery.outbox import DEAD, DELIVERED, PENDING, Outbox
from worker.delivery.signing import check_secret, new_secret, verify
from worker.delivery.ssrf import AddressPolicy, HttpLimits, UrlGuard, parse_allowlist
from worker.store import Store

ARTICLE = {"id": "site-42", "title": "Council votes", "text": "The council voted on the budget. It passed.",
           "lang": "en", "targets": ["de"]}


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
    return guard_connections(monkeypatch)


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    r = LoopbackReceiver()
    yield r
    r.close()


def finish(store: Store, article: dict[str, Any] = ARTICLE, status: str = DONE) -> str:
    """Submit, claim and finish one job as the task does; returns its id."""
    valid = validate_article(article)
    job_id = store.submit([valid], "bulk")[0].job_id
    assert store.start_job(valid, job_id, "bulk", 3).proceed
    store.finish_job(job_id, Result(article_id=valid.key, external_id=valid.id, status=status, source_lang="en",
                                    title={"en": "Council votes", "de": "Rat stimmt ab"},
                                    summary={"en": "The council voted.", "de": "Der Rat stimmte ab."},
                                    models={"de": "toy", "summary": "lead"}, timings_ms={"total": 5}, job_id=job_id))
    return job_id


def events(store: Store, render: bool = True) -> list[Any]:
    """The outbox's events, oldest first; their bodies rendered (as the dispatcher does first)."""
    from sqlalchemy import select

    from worker.store.schema import WebhookEventRow

    def read() -> list[Any]:
        with store._read() as session:
            return list(session.execute(select(WebhookEventRow).order_by(WebhookEventRow.created_at)).scalars())

    rows = read()
    if render and rows:
        Outbox(store).render_payloads([e.id for e in rows])
        rows = read()
    return rows


def dispatcher(store: Store, **options: Any) -> Dispatcher:
    guard = UrlGuard(AddressPolicy.from_strings(["127.0.0.1/32"]), StubResolver({"cb.example.test": ["127.0.0.1"]}))
    defaults = dict(retry_base_s=0.01, retry_max_s=0.02, http=HttpLimits(connect_s=1, read_s=1, total_s=2))
    return Dispatcher(Outbox(store), DispatchOptions(**{**defaults, **options}), guard)


# --- the outbox ----------------------------------------------------------------------------------


def test_a_finished_job_writes_its_event_with_the_body_get_returns(store: Store, redis_url: str, database_url: str) -> None:
    from fastapi.testclient import TestClient

    from worker.api import create_app
    from worker.config import Settings

    outbox = Outbox(store)
    outbox.add_endpoint("https://hooks.example.test/a", ("article.done", "article.failed"), new_secret())
    outbox.add_endpoint("https://hooks.example.test/b", ("article.failed",), new_secret())
    job_id = finish(store)
    assert [e.payload for e in events(store, render=False)] == [None]  # the worker's transaction stays short
    [event] = events(store)
    body = json.loads(event.payload)
    assert event.id.startswith("msg_") and event.type == body["type"] == "article.done" and event.job_id == job_id
    with TestClient(create_app(Settings(database_url=database_url, broker_url=redis_url))) as api:
        got = api.get(f"/v1/jobs/{job_id}")
    assert got.status_code == 200 and body["data"] == got.json()  # the same serialisation
    assert body["data"]["external_id"] == "site-42" and body["data"]["result"]["summary"]["de"] == "Der Rat stimmte ab."
    [delivery] = outbox.deliveries()  # only the endpoint subscribed to article.done
    assert (delivery.target, delivery.state, delivery.attempts) == ("https://hooks.example.test/a", PENDING, 0)


def test_without_listeners_no_event_is_written(store: Store) -> None:
    finish(store)
    assert events(store) == []


def test_the_event_shares_the_results_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing the event fails, the result is not stored either (and the job is retried)."""
    import worker.delivery.outbox as outbox_module

    Outbox(store).add_endpoint("https://hooks.example.test/a", ("article.done",), new_secret())

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox_module, "new_event_id", broken)
    valid = validate_article(ARTICLE)
    with pytest.raises(RuntimeError, match="disk full"):
        finish(store)
    job = store.find_articles(valid.key)[0][1]
    assert job.status == "running" and store.row_counts()["texts"] == 0 and events(store) == []


def test_a_failed_job_sends_article_failed_once(store: Store) -> None:
    Outbox(store).add_endpoint("https://hooks.example.test/a", ("article.failed",), new_secret())
    valid = validate_article(ARTICLE)
    job_id = store.submit([valid], "bulk")[0].job_id
    store.start_job(valid, job_id, "bulk", 3)
    store.fail_job(job_id, "the worker was lost")
    store.fail_job(job_id, "again")  # a finished job keeps its result: no second event
    [event] = events(store)
    body = json.loads(event.payload)
    assert body["type"] == "article.failed" and body["data"]["status"] == "failed"
    assert "the worker was lost" in json.dumps(body["data"]["result"])


def test_an_articles_callback_url_gets_its_own_delivery(store: Store) -> None:
    job_id = finish(store, {**ARTICLE, "callback_url": "https://cb.example.test/done?story=42"})
    [delivery] = Outbox(store).deliveries(job_id=job_id)
    assert delivery.target == "https://cb.example.test/done?story=42" and delivery.endpoint_id is None


def test_callback_url_must_be_http_and_bounded() -> None:
    from pipeline.exceptions import ArticleError

    for bad, message in [("ftp://x.test/", "http"), ("https://x.test/" + "a" * 2_000, "2,000")]:
        with pytest.raises(ArticleError) as err:
            validate_article({**ARTICLE, "callback_url": bad})
        assert err.value.field == "callback_url" and message in str(err.value)
    a = validate_article({**ARTICLE, "callback_url": "https://x.test/cb"})
    assert a.key == validate_article(ARTICLE).key  # where the result goes does not change it


# --- the dispatcher ------------------------------------------------------------------------------


def test_a_delivery_is_signed_and_verifies_with_the_endpoints_secret(
    store: Store, receiver: LoopbackReceiver, only_loopback: ConnectionLog
) -> None:
    secret = new_secret()
    Outbox(store).add_endpoint(f"{receiver.url}/hook", ("article.done",), secret)
    job_id = finish(store)
    assert dispatcher(store).run_once() == 1
    [request] = receiver.requests
    event = verify(secret, request.body, request.headers)
    assert event["data"]["job_id"] == job_id
    assert request.headers["webhook-id"] == events(store)[0].id
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(Exception):
        verify(new_secret(), request.body, request.headers)  # another secret does not verify
    [delivery] = Outbox(store).deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DELIVERED, 1, 200)
    assert set(only_loopback.addresses) == {"127.0.0.1"}


def test_a_failing_receiver_is_retried_with_the_same_id_then_given_up(
    store: Store, only_loopback: ConnectionLog
) -> None:
    receiver = LoopbackReceiver(lambda n, r: Reply(500))
    try:
        outbox = Outbox(store)
        outbox.add_endpoint(f"{receiver.url}/hook", ("article.done",), new_secret())
        finish(store)
        d = dispatcher(store, retry_for_s=3600)
        assert d.run_once() == 1
        [delivery] = outbox.deliveries()
        assert (delivery.state, delivery.attempts, delivery.last_error) == (PENDING, 1, "HTTP 500")
        assert delivery.next_attempt_at > delivery.last_attempt_at  # backed off
        time.sleep(0.05)
        assert d.run_once() == 1
        gone = dispatcher(store, retry_for_s=0.001)  # past the retry window: dead
        time.sleep(0.05)
        assert gone.run_once() == 1
        [delivery] = outbox.deliveries(failed_only=True)
        assert delivery.state == DEAD and delivery.attempts == 3 and "gave up after 3 attempts" in delivery.last_error
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1 and len(receiver.requests) == 3
    finally:
        receiver.close()


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [retry_delay(n, 5, 3600, rng) for n in range(1, 14)]
    assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10 and 40 <= delays[4] <= 80
    assert all(1800 <= d <= 3600 for d in delays[10:])
    assert len({round(retry_delay(3, 5, 3600, rng), 6) for _ in range(20)}) > 1  # jittered


def test_a_redirect_is_a_failure_and_is_not_followed(store: Store, only_loopback: ConnectionLog) -> None:
    receiver = LoopbackReceiver(lambda n, r: Reply(307, (("Location", "http://169.254.169.254/latest/meta-data/"),)))
    try:
        Outbox(store).add_endpoint(f"{receiver.url}/hook", ("article.done",), new_secret())
        finish(store)
        dispatcher(store).run_once()
        [delivery] = Outbox(store).deliveries()
        assert delivery.state == PENDING and delivery.last_status == 307 and "not followed" in delivery.last_error
        assert len(receiver.requests) == 1 and set(only_loopback.addresses) == {"127.0.0.1"}
    finally:
        receiver.close()


@pytest.mark.parametrize("callback,allowlist,why", [
    ("http://cb.example.test:{port}/cb", [], "allowlist"),                                 # not allowlisted
    ("http://169.254.169.254/latest/meta-data/", ["http://169.254.169.254"], "link-local"),  # allowlisted, forbidden address
    ("http://10.0.0.1/cb", ["http://10.0.0.1"], "private"),
])
def test_a_callback_is_refused_before_any_connection(
    store: Store, receiver: LoopbackReceiver, only_loopback: ConnectionLog, callback: str, allowlist: list[str], why: str
) -> None:
    callback = callback.format(port=receiver.port)
    finish(store, {**ARTICLE, "callback_url": callback})
    guard = UrlGuard(AddressPolicy(), StubResolver({"cb.example.test": ["127.0.0.1"]}))
    d = Dispatcher(Outbox(store), DispatchOptions(callback_allowlist=parse_allowlist(allowlist),
                                                  callback_secret=new_secret()), guard)
    d.run_once()
    [delivery] = Outbox(store).deliveries()
    assert delivery.state == DEAD and delivery.last_error.startswith("refused") and why in delivery.last_error
    assert only_loopback.addresses == [] and receiver.requests == []


def test_an_allowlisted_callback_is_called_and_signed_with_the_callback_secret(
    store: Store, receiver: LoopbackReceiver, only_loopback: ConnectionLog
) -> None:
    secret = new_secret()
    job_id = finish(store, {**ARTICLE, "callback_url": f"http://cb.example.test:{receiver.port}/cb/42"})
    dispatcher(store, callback_allowlist=parse_allowlist([f"http://cb.example.test:{receiver.port}/cb"]),
               callback_secret=secret).run_once()
    [request] = receiver.requests
    assert verify(secret, request.body, request.headers)["data"]["job_id"] == job_id
    assert request.path == "/cb/42" and request.headers["host"] == f"cb.example.test:{receiver.port}"
    assert Outbox(store).deliveries()[0].state == DELIVERED


def test_a_callback_without_a_configured_secret_is_dead(store: Store, only_loopback: ConnectionLog) -> None:
    finish(store, {**ARTICLE, "callback_url": "http://cb.example.test/cb"})
    dispatcher(store, callback_allowlist=parse_allowlist(["http://cb.example.test"])).run_once()
    [delivery] = Outbox(store).deliveries()
    assert delivery.state == DEAD and "BABELWIRE_WEBHOOK_CALLBACK_SECRET" in delivery.last_error
    assert only_loopback.addresses == []


def test_a_claimed_delivery_whose_dispatcher_died_is_due_again_after_its_lease(store: Store) -> None:
    outbox = Outbox(store)
    outbox.add_endpoint("https://hooks.example.test/a", ("article.done",), new_secret())
    finish(store)
    [first] = outbox.claim(10, lease_s=0.2)
    assert outbox.claim(10, lease_s=0.2) == []  # leased: no one else takes it
    time.sleep(0.3)  # ... and its dispatcher never records an outcome
    [again] = outbox.claim(10, lease_s=0.2)
    assert again.delivery_id == first.delivery_id and again.event_id == first.event_id and again.attempt == 2


def test_a_result_queue_gets_a_celery_task_message_with_the_same_body(store: Store, redis_url: str) -> None:
    import redis

    from worker.delivery.result_queue import ResultQueuePublisher

    Outbox(store).add_endpoint("celery://site-results", ("article.done",), new_secret())
    job_id = finish(store)
    publisher = ResultQueuePublisher(redis_url)
    try:
        d = Dispatcher(Outbox(store), DispatchOptions(), UrlGuard(AddressPolicy(), StubResolver({})), publisher)
        assert d.run_once() == 1
    finally:
        publisher.close()
    raw = redis.Redis.from_url(redis_url).lpop("site-results")
    message = json.loads(raw)
    [event] = events(store)
    assert message["headers"]["task"] == "article.finished" and message["headers"]["id"] == event.id
    assert message["content-type"] == "application/json"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [json.loads(event.payload)] and args[0]["data"]["job_id"] == job_id and kwargs == {}
    assert Outbox(store).deliveries()[0].state == DELIVERED


def test_secrets_are_whsec_and_checked() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and check_secret(secret) == secret
    for bad in ["abc", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()]:
        with pytest.raises(ValueError):
            check_secret(bad)


def test_metrics_count_deliveries_by_state_and_the_oldest_undelivered_age(store: Store) -> None:
    outbox = Outbox(store)
    assert outbox.stats().by_state == {"pending": 0, "delivered": 0, "dead": 0}
    outbox.add_endpoint("https://hooks.example.test/a", ("article.done",), new_secret())
    finish(store)
    time.sleep(0.05)
    stats = outbox.stats()
    assert stats.by_state == {"pending": 1, "delivered": 0, "dead": 0} and stats.oldest_pending_s > 0


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_add_list_remove_deliveries_and_replay(store: Store, service_env: dict[str, str], cli_in_process: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env = service_env
    added = cli_in_process(["webhooks", "add", "https://hooks.example.test/a", "--events", "article.done", "--json"], env)
    assert added.returncode == 0, added.stderr
    first = json.loads(added.stdout)
    assert first["events"] == ["article.done"] and check_secret(first["secret"])
    text = cli_in_process(["webhooks", "add", "https://hooks.example.test/b"], env)
    assert "secret: whsec_" in text.stdout and "shown only now" in text.stdout

    preset = new_secret()
    monkeypatch.setenv("SITE_HOOK_SECRET", preset)
    from_env = cli_in_process(["webhooks", "add", "https://hooks.example.test/c", "--secret-env", "SITE_HOOK_SECRET",
                               "--json"], env)
    assert json.loads(from_env.stdout)["secret"] is None  # not echoed
    bad = cli_in_process(["webhooks", "add", "https://hooks.example.test/d", "--events", "article.gone"], env)
    assert bad.returncode == 2 and "article.gone" in bad.stderr
    bad = cli_in_process(["webhooks", "add", "ftp://hooks.example.test/d"], env)
    assert bad.returncode == 2 and "URL" in bad.stderr

    listed = json.loads(cli_in_process(["webhooks", "list", "--json"], env).stdout)
    assert [e["url"] for e in listed] == [f"https://hooks.example.test/{c}" for c in "abc"]
    assert "whsec_" not in cli_in_process(["webhooks", "list"], env).stdout  # never shown again

    job_id = finish(store)
    rows = [json.loads(l) for l in cli_in_process(["webhooks", "deliveries", "--json"], env).stdout.splitlines()]
    assert len(rows) == 3 and {r["job_id"] for r in rows} == {job_id} and {r["state"] for r in rows} == {"pending"}

    removed = cli_in_process(["webhooks", "remove", str(first["id"])], env)
    assert removed.returncode == 0 and "1 pending" in removed.stdout
    assert cli_in_process(["webhooks", "remove", "999"], env).returncode == 1
    failed = [json.loads(l) for l in cli_in_process(["webhooks", "deliveries", "--failed", "--json"], env).stdout.splitlines()]
    assert [(r["state"], r["last_error"]) for r in failed] == [(DEAD, "endpoint removed")]

    replayed = cli_in_process(["webhooks", "replay", str(failed[0]["id"])], env)
    assert replayed.returncode == 0 and "1 deliveries" in replayed.stdout
    assert Outbox(store).deliveries(job_id=job_id)[-1].state in (PENDING,)
    since = cli_in_process(["webhooks", "replay", "--since", "1h"], env)
    assert "3 deliveries" in since.stdout
    assert cli_in_process(["webhooks", "replay", "--since", "2999-01-01"], env).returncode == 1
    assert cli_in_process(["webhooks", "replay"], env).returncode == 2


def test_the_api_exports_delivery_metrics_and_the_review_page_lists_an_articles_deliveries(
    store: Store, redis_url: str, database_url: str
) -> None:
    from fastapi.testclient import TestClient

    from worker.api import create_app
    from worker.config import Settings

    outbox = Outbox(store)
    outbox.add_endpoint("https://hooks.example.test/news", ("article.done",), new_secret())
    job_id = finish(store, {**ARTICLE, "callback_url": "https://cb.example.test/done?token=s3cret"})
    [callback, endpoint] = sorted(outbox.deliveries(job_id=job_id), key=lambda d: d.endpoint_id is None)
    outbox.failed(callback.id, "HTTP 503", 503, retry_at=None)
    with TestClient(create_app(Settings(database_url=database_url, broker_url=redis_url))) as api:
        metrics = api.get("/metrics").text
        page = api.get(f"/articles/{validate_article(ARTICLE).key}").text
    assert 'babelwire_webhook_deliveries{state="pending"} 1.0' in metrics
    assert 'babelwire_webhook_deliveries{state="dead"} 1.0' in metrics
    assert 'babelwire_webhook_deliveries{state="delivered"} 0.0' in metrics
    oldest = [l for l in metrics.splitlines() if l.startswith("babelwire_webhook_oldest_undelivered_seconds ")]
    assert len(oldest) == 1 and float(oldest[0].split()[1]) > 0
    assert 'id="deliveries"' in page and "https://hooks.example.test/news" in page
    assert "https://cb.example.test/done" in page and "s3cret" not in page  # a query can hold a token
    assert "HTTP 503" in page and "delivery-dead" in page and "delivery-pending" in page


def test_a_job_given_up_after_its_attempts_and_a_malformed_message_send_article_failed(store: Store) -> None:
    Outbox(store).add_endpoint("https://hooks.example.test/a", ("article.failed",), new_secret())
    valid = validate_article(ARTICLE)
    job_id = store.submit([valid], "bulk")[0].job_id
    store.running_lease_s = 0  # each earlier delivery of the message is over
    for _ in range(2):
        assert store.start_job(valid, job_id, "bulk", 2).proceed
    assert not store.start_job(valid, job_id, "bulk", 2).proceed  # gave up
    malformed = store.record_malformed("m-1", {"id": "site-7", "text": 42}, "live", "text: not a string")
    assert store.record_malformed("m-1", {"id": "site-7", "text": 42}, "live", "text: not a string") == malformed
    bodies = {json.loads(e.payload)["data"]["job_id"]: json.loads(e.payload) for e in events(store)}
    assert set(bodies) == {job_id, malformed}  # once each, the redelivered malformed message adds none
    assert "gave up after 2 attempts" in json.dumps(bodies[job_id]["data"]["result"])
    assert bodies[malformed]["type"] == "article.failed" and bodies[malformed]["data"]["external_id"] == "site-7"


def test_prune_removes_old_finished_events_only(store: Store, cli_in_process: Any, service_env: dict[str, str]) -> None:
    outbox = Outbox(store)
    outbox.add_endpoint("https://hooks.example.test/a", ("article.done",), new_secret())
    finish(store)
    finish(store, {**ARTICLE, "text": "Another story entirely. It ends."})
    delivered, pending = outbox.deliveries()
    outbox.delivered(delivered.id, 200)
    assert outbox.prune(datetime.now(timezone.utc) - timedelta(hours=1)) == 0  # too young
    out = cli_in_process(["webhooks", "prune", "--older-than", "2999-01-01"], service_env)
    assert out.returncode == 0 and "1 events removed" in out.stdout  # the pending one stays
    assert [d.id for d in outbox.deliveries()] == [pending.id] and len(events(store)) == 1


def test_a_failing_endpoint_holds_its_backlog_and_its_first_success_releases_it(
    store: Store, only_loopback: ConnectionLog
) -> None:
    """A dead receiver costs one attempt per backoff interval, not one per event."""
    healthy = {"up": False}
    receiver = LoopbackReceiver(lambda n, r: Reply(200 if healthy["up"] else 503))
    try:
        outbox = Outbox(store)
        outbox.add_endpoint(f"{receiver.url}/hook", ("article.done",), new_secret())
        for i in range(12):
            finish(store, {**ARTICLE, "id": f"s{i}", "text": f"Story number {i} is here. It ends."})
        d = dispatcher(store, concurrency=2, retry_base_s=60, retry_max_s=600)
        assert d.run_once() == 2  # the first two fail ...
        assert d.run_once() == 0  # ... and the other ten wait with them
        held = outbox.deliveries()
        assert all(x.next_attempt_at > datetime.now(timezone.utc) + timedelta(seconds=20) for x in held)
        assert len(receiver.requests) == 2 and sum(x.attempts for x in held) == 2

        finish(store, {**ARTICLE, "id": "s12", "text": "A story that comes in later. It ends."})
        assert d.run_once() == 0  # a new event for the held endpoint waits a little too
        healthy["up"] = True
        assert outbox.replay(delivery_ids=[held[-1].id]) == 1  # one comes due (an operator's replay) ...
        assert dispatcher(store, concurrency=1).run_once() == 1  # ... another dispatcher sends it: the backlog is released
        assert dispatcher(store, concurrency=20).run_once() == 12
        assert {x.state for x in outbox.deliveries()} == {DELIVERED}
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 13
    finally:
        receiver.close()


def test_deliveries_held_past_the_retry_window_end_dead_together(store: Store, only_loopback: ConnectionLog) -> None:
    receiver = LoopbackReceiver(lambda n, r: Reply(503))
    try:
        outbox = Outbox(store)
        outbox.add_endpoint(f"{receiver.url}/hook", ("article.done",), new_secret())
        for i in range(5):
            finish(store, {**ARTICLE, "id": f"s{i}", "text": f"Story number {i} is here. It ends."})
        time.sleep(0.05)
        dispatcher(store, concurrency=1, retry_for_s=0.01).run_once()
        rows = outbox.deliveries()
        assert {x.state for x in rows} == {DEAD} and len(receiver.requests) == 1
        assert sum("gave up" in (x.last_error or "") for x in rows) == 5
    finally:
        receiver.close()
