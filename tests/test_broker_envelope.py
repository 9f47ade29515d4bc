"""The envelope checks the guarded transport applies before kombu or Celery see an item."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.faults_support import TASK, envelope, task_body
from worker.broker.envelope import EnvelopePolicy, decode_item, decode_unacked, task_message_problem
from worker.broker.exceptions import RefusedItem
from worker.celery_app import RETRY_MAX_DELAY_S, create_app, max_eta
from worker.config import Settings

POLICY = EnvelopePolicy(task_names=frozenset({TASK}), max_eta_s=65)
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def message(**options: object) -> dict:
    return json.loads(envelope(task_body(kwargs={"article": {"id": "a", "text": "t"}}), task_id="m", **options))


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"null", b"[]", b'{"properties": 1}',
                                 b'{"properties": {"delivery_tag": "t", "delivery_info": {}}, "headers": null}'])
def test_items_that_are_not_envelopes_are_refused_with_a_reason_never_an_exception(raw: bytes) -> None:
    with pytest.raises(RefusedItem) as refused:
        decode_item(raw)
    assert refused.value.reason


def test_an_unacked_record_must_be_message_exchange_routing_key() -> None:
    good = message()
    assert decode_unacked(json.dumps([good, "", "live"]))[2] == "live"
    for bad in ([good, "", None], [good], {"a": 1}, [{"x": 1}, "", "live"]):
        with pytest.raises(RefusedItem):
            decode_unacked(json.dumps(bad))
    with pytest.raises(RefusedItem, match="nested deeper"):
        decode_unacked(b"[" * 5000 + b"]" * 5000)


@pytest.mark.parametrize("task", ["celery.chord_unlock", "celery.backend_cleanup", "celery.accumulate", "os.system", 12, None])
def test_only_our_task_is_accepted(task: object) -> None:
    problem = task_message_problem(message(task=task), POLICY, NOW)
    assert problem is not None and "not run by this worker" in problem
    assert task_message_problem(message(), POLICY, NOW) is None


def test_an_eta_past_the_bound_is_refused_and_one_within_it_is_not() -> None:
    def eta_in(seconds: float) -> dict:
        return message(headers={"eta": (NOW + timedelta(seconds=seconds)).isoformat()})

    assert task_message_problem(eta_in(64), POLICY, NOW) is None
    assert task_message_problem(eta_in(-3600), POLICY, NOW) is None  # overdue: runs now
    assert "eta" in (task_message_problem(eta_in(66), POLICY, NOW) or "")
    assert "eta" in (task_message_problem(eta_in(365 * 86400), POLICY, NOW) or "")
    naive = message(headers={"eta": (NOW + timedelta(days=1)).replace(tzinfo=None).isoformat()})
    assert "eta" in (task_message_problem(naive, POLICY, NOW) or "")  # naive: read as UTC


def test_a_body_nested_too_deep_is_refused_before_celery_decodes_it() -> None:
    deep = message()
    deep["body"] = base64.b64encode(b"[[], {\"article\": " + b"[" * 500 + b"]" * 500 + b"}, {}]").decode()
    assert "nested deeper" in (task_message_problem(deep, POLICY, NOW) or "")
    garbled = message()
    garbled["body"] = "not base64 !!"
    assert "base64" in (task_message_problem(garbled, POLICY, NOW) or "")


def test_the_eta_bound_admits_our_own_retries_and_nothing_far_beyond_by_default() -> None:
    default = Settings()
    assert RETRY_MAX_DELAY_S < max_eta(default) <= RETRY_MAX_DELAY_S + 10
    assert max_eta(Settings(broker_max_eta_s=3600)) == 3600
    app = create_app(default)
    assert app.conf.broker_transport_options["max_eta_s"] == max_eta(default)
