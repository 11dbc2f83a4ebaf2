"""Safe retries (apps.core.idempotency): a request sent again with its
Idempotency-Key changes nothing more and gets the first answer.

Through the interactions API (a real operation), and through small ApiViews mounted
here (`urlpatterns`, with `pytest.mark.urls`) for what a real operation cannot show
on demand: a slow handler, a server error, an answer holding personal data."""

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.access.models import Interaction
from apps.accounts.services import token_issue
from apps.core import idempotency
from apps.core.api import ApiView, created
from apps.core.errors import Conflict
from apps.core.models import IdempotencyRecord, IdempotencyState
from apps.core.tasks import idempotency_purge_task
from tests.concurrency import at_once
from tests.customers.factories import CANARY, make_customer

HERE = "tests.core.test_idempotency"
URL = "/groups/"
INTERACTIONS = "/api/v1/interactions/"
KEY = "order-7f3a-0001"


class GroupCreateApi(ApiView):
    """Creates a group (a row to count); its answer holds a canary value, as a reveal
    or a created customer would hold personal data."""

    scopes = {"post": "cases:write"}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=150)

    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        if name == "error":
            raise RuntimeError("a bug of ours")
        if name == "unavailable":
            Group.objects.create(name=f"{name} {uuid.uuid4().hex[:8]}")
            return Response({"detail": "down"}, status=503)
        if name.startswith("slow"):
            time.sleep(0.5)
        # Names are unique; a request that runs twice makes a second group.
        group = Group.objects.create(name=f"{name} {uuid.uuid4().hex[:8]}")
        return created(
            {"id": group.pk, "name": group.name, "seen": CANARY["full_name"]},
            location=f"{URL}{group.pk}/",
        )


# The project's routes too: its middleware and pages reverse them.
urlpatterns = [
    path("groups/", GroupCreateApi.as_view()),
    path("", include("config.urls")),
]


def _names() -> list[str]:
    """What each group was made for, in order (the name sent)."""
    return sorted(
        name.split()[0] for name in Group.objects.values_list("name", flat=True)
    )


def _client(token: str | None = None, **kwargs) -> APIClient:
    client = APIClient(**kwargs)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _post(client: Client, body: dict, key: str | None = KEY, url: str = URL):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(url, body, format="json", headers=headers)


@pytest.fixture
def token(support_agent) -> str:
    return token_issue(user=support_agent).key


# Through the interactions API.


@pytest.mark.django_db
def test_a_retried_interaction_opens_one_and_gets_the_same_answer(support_agent, token):
    customer = make_customer()
    api = _client(token)
    body = {"customer": str(customer.pk), "kind": "support_case"}

    first = _post(api, body, url=INTERACTIONS)
    again = _post(api, body, url=INTERACTIONS)

    assert first.status_code == 201, first.json()
    assert Interaction.objects.filter(customer=customer).count() == 1
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers.get("Location") == first.headers.get("Location")
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


@pytest.mark.django_db
def test_an_interaction_key_reused_with_another_body_is_422(support_agent, token):
    first, second = make_customer(), make_customer()
    api = _client(token)
    _post(api, {"customer": str(first.pk), "kind": "support_case"}, url=INTERACTIONS)

    reused = _post(
        api, {"customer": str(second.pk), "kind": "support_case"}, url=INTERACTIONS
    )

    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert not Interaction.objects.filter(customer=second).exists()


# The kept answer, through a small operation.


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_retry_gets_the_first_answer_and_changes_nothing_more(token):
    api = _client(token)

    first = _post(api, {"name": "a"})
    again = _post(api, {"name": "a"})

    assert first.status_code == again.status_code == 201
    assert Group.objects.count() == 1
    assert again.content == first.content
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == "application/json"
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_without_a_key_every_request_runs(token):
    api = _client(token)
    _post(api, {"name": "a"}, key=None)
    _post(api, {"name": "b"}, key=None)
    assert Group.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422_and_changes_nothing(token):
    api = _client(token)
    _post(api, {"name": "a"})

    reused = _post(api, {"name": "b"})

    assert reused.status_code == 422
    assert reused.json() == {
        "status": 422,
        "code": "idempotency_key_reused",
        "detail": "This Idempotency-Key was used for another request (another "
        "method, path or body); use a new key for a new request.",
        "errors": [],
    }
    assert _names() == ["a"]


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_keys_are_per_token(support_agent, token):
    other = token_issue(user=support_agent).key

    mine = _post(_client(token), {"name": "a"})
    theirs = _post(_client(other), {"name": "b"})

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert _names() == ["a", "b"]


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_session_has_keys_of_its_own(support_agent, token):
    session = APIClient()
    session.force_authenticate(support_agent)

    _post(_client(token), {"name": "a"})
    answer = _post(session, {"name": "a"})

    assert answer.status_code == 201
    assert "Idempotent-Replayed" not in answer.headers
    assert Group.objects.count() == 2
    assert IdempotencyRecord.objects.filter(owner=f"user:{support_agent.pk}").exists()


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_refusal_is_kept_and_replayed(token):
    api = _client(token)

    first = _post(api, {"name": ""})
    again = _post(api, {"name": ""})

    assert first.status_code == again.status_code == 400
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_an_error_of_ours_is_not_kept_and_a_retry_runs_again(token):
    api = _client(token, raise_request_exception=False)

    assert _post(api, {"name": "error"}).status_code == 500
    assert not IdempotencyRecord.objects.exists()
    assert _post(api, {"name": "error"}).status_code == 500

    unavailable = _post(api, {"name": "unavailable"}, key="other-key")
    assert unavailable.status_code == 503
    assert not IdempotencyRecord.objects.exists()
    assert not Group.objects.exists()  # its change was rolled back with it
    again = _post(api, {"name": "unavailable"}, key="other-key")
    assert "Idempotent-Replayed" not in again.headers
    assert not Group.objects.exists()


@pytest.mark.urls(HERE)
@pytest.mark.django_db
@pytest.mark.parametrize(
    "key", ["", "has space", "x" * 256, "caf\u00e9", "tab\there"], ids=repr
)
def test_a_malformed_key_is_400_naming_the_header(token, key):
    answer = _post(_client(token), {"name": "a"}, key=key)

    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "idempotency_key_invalid"
    assert "Idempotency-Key" in body["detail"]
    assert body["errors"] == []
    assert not Group.objects.exists()


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_the_longest_key_and_every_visible_character_are_accepted(token):
    api = _client(token)
    assert _post(api, {"name": "a"}, key="k" * 255).status_code == 201
    visible = "".join(chr(c) for c in range(0x21, 0x7F))
    assert _post(api, {"name": "b"}, key=visible).status_code == 201


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_request_still_running_is_409_with_retry_after(support_agent, token):
    owner = f"token:{support_agent.api_tokens.get().pk}"
    body = b'{"name": "a"}'
    idempotency.claim(owner=owner, key=KEY, method="POST", path=URL, body=body)

    answer = _client(token).post(
        URL, body, content_type="application/json", headers={"Idempotency-Key": KEY}
    )

    assert answer.status_code == 409
    assert answer.json()["code"] == "idempotency_in_progress"
    assert "retry shortly" in answer.json()["detail"]
    assert answer.headers["Retry-After"] == "1"
    assert not Group.objects.exists()


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_an_expired_lease_is_taken_over(support_agent, token):
    owner = f"token:{support_agent.api_tokens.get().pk}"
    body = b'{"name": "a"}'
    dead = idempotency.claim(owner=owner, key=KEY, method="POST", path=URL, body=body)
    IdempotencyRecord.objects.update(locked_until=timezone.now() - timedelta(seconds=1))

    answer = _client(token).post(
        URL, body, content_type="application/json", headers={"Idempotency-Key": KEY}
    )

    assert answer.status_code == 201
    assert Group.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.state == IdempotencyState.DONE
    # The dead run, were it to wake up, neither forgets nor overwrites the answer.
    idempotency.release(claim=dead)
    assert IdempotencyRecord.objects.get().state == IdempotencyState.DONE


@pytest.mark.django_db
def test_a_run_that_lost_its_lease_cannot_keep_its_answer():
    body = b"{}"
    dead = idempotency.claim(
        owner="user:1", key=KEY, method="POST", path=URL, body=body
    )
    IdempotencyRecord.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    live = idempotency.claim(
        owner="user:1", key=KEY, method="POST", path=URL, body=body
    )
    assert isinstance(live, idempotency.Claim)

    with pytest.raises(idempotency.IdempotencyLeaseLost), transaction.atomic():
        idempotency.settle(claim=dead, response=HttpResponse("late", status=201))

    idempotency.settle(claim=live, response=HttpResponse("kept", status=201))
    stored = idempotency.claim(
        owner="user:1", key=KEY, method="POST", path=URL, body=body
    )
    assert isinstance(stored, idempotency.StoredResponse)
    assert stored.body == b"kept"


@pytest.mark.django_db
def test_release_forgets_only_a_claim_in_progress():
    body = b"{}"
    claim = idempotency.claim(
        owner="user:1", key=KEY, method="POST", path=URL, body=body
    )
    idempotency.release(claim=claim)
    idempotency.release(claim=claim)  # again: nothing to do
    assert not IdempotencyRecord.objects.exists()

    claim = idempotency.claim(
        owner="user:1", key=KEY, method="POST", path=URL, body=body
    )
    idempotency.settle(claim=claim, response=HttpResponse("ok", status=200))
    idempotency.release(claim=claim)
    assert IdempotencyRecord.objects.get().state == IdempotencyState.DONE


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_the_kept_body_is_sealed(token):
    first = _post(_client(token), {"name": "a"})
    assert CANARY["full_name"].encode() in first.content

    record = IdempotencyRecord.objects.get()
    stored = bytes(record.body)
    assert CANARY["full_name"].encode() not in stored
    assert b"Canary" not in stored
    with connection.cursor() as cursor:
        cursor.execute("SELECT body, CAST(headers AS text) FROM core_idempotencyrecord")
        raw_body, headers = cursor.fetchone()
    assert CANARY["full_name"].encode() not in bytes(raw_body)
    assert CANARY["full_name"] not in headers


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_body_sealed_under_another_secret_is_a_409_never_a_second_change(
    settings, token
):
    api = _client(token)
    _post(api, {"name": "a"})

    settings.SECRET_KEY = "another-secret-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = []
    again = _post(api, {"name": "a"})

    assert again.status_code == 409
    assert again.json()["code"] == "idempotency_answer_lost"
    assert Group.objects.count() == 1  # made once: its answer is lost, not redone


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_body_sealed_under_a_fallback_secret_is_replayed(settings, token):
    api = _client(token)
    _post(api, {"name": "a"})

    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "another-secret-" + "y" * 40
    again = _post(api, {"name": "a"})

    assert again.headers["Idempotent-Replayed"] == "true"
    assert Group.objects.count() == 1


@pytest.mark.django_db
def test_a_body_opens_only_in_its_own_record():
    claims = [
        idempotency.claim(owner="user:1", key=k, method="POST", path=URL, body=b"{}")
        for k in ("one", "two")
    ]
    for claim, text in zip(claims, ("first", "second"), strict=True):
        idempotency.settle(claim=claim, response=HttpResponse(text, status=200))
    one, two = IdempotencyRecord.objects.order_by("key")
    IdempotencyRecord.objects.filter(pk=two.pk).update(body=one.body)

    # Moved into another record, a body does not open: never replayed there.
    with pytest.raises(Conflict, match="can no longer be read"):
        idempotency.claim(
            owner="user:1", key="two", method="POST", path=URL, body=b"{}"
        )


@pytest.mark.urls(HERE)
@pytest.mark.django_db
def test_a_record_past_the_window_is_run_again_then_purged(settings, token):
    settings.AMANAH_IDEMPOTENCY_HOURS = 24
    api = _client(token)
    _post(api, {"name": "a"})
    _post(api, {"name": "b"}, key="old-and-different")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    again = _post(api, {"name": "a"})
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert _names() == ["a", "a", "b"]
    # The key's old record is the new run's now, inside the window.
    renewed = IdempotencyRecord.objects.get(key=KEY)
    assert renewed.created_at > timezone.now() - timedelta(minutes=1)

    assert idempotency_purge_task.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == [KEY]


@pytest.mark.django_db
def test_the_purge_works_in_batches():
    old = timezone.now() - timedelta(hours=25)
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            owner="user:1",
            key=f"k{n}",
            fingerprint="0" * 64,
            state=IdempotencyState.DONE,
            created_at=old,
        )
        for n in range(7)
    )
    assert idempotency.idempotency_records_purge(batch_size=3) == 7
    assert not IdempotencyRecord.objects.exists()


# Under real concurrency: each thread with a connection of its own.


def _poster(token: str, body: dict, url: str = URL) -> Callable[[], tuple[int, bool]]:
    def post() -> tuple[int, bool]:
        answer = _post(_client(token), body, url=url)
        return answer.status_code, "Idempotent-Replayed" in answer.headers

    return post


@pytest.mark.postgres
@pytest.mark.urls(HERE)
@pytest.mark.django_db(transaction=True)
def test_two_at_once_with_one_key_change_once(support_agent):
    token = token_issue(user=support_agent).key

    results = at_once([_poster(token, {"name": "slow"}) for _ in range(2)])

    # The other waited on the first (409), or came after it (the replay).
    assert sorted(results) in (
        [(201, False), (409, False)],
        [(201, False), (201, True)],
    )
    assert Group.objects.count() == 1
    assert IdempotencyRecord.objects.get().state == IdempotencyState.DONE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_interactions_opened_at_once_with_one_key_open_one(support_agent):
    token = token_issue(user=support_agent).key
    customer = make_customer()
    body = {"customer": str(customer.pk), "kind": "support_case"}

    results = at_once([_poster(token, body, url=INTERACTIONS) for _ in range(4)])

    statuses = Counter(status for status, _ in results)
    assert statuses[201] >= 1
    assert set(statuses) <= {201, 409}
    # The first answer, and any other 201 is its replay.
    assert sum(1 for status, replayed in results if status == 201 and not replayed) == 1
    assert Interaction.objects.filter(customer=customer).count() == 1


@pytest.mark.django_db
def test_a_record_taken_over_past_the_window_forgets_its_old_subject(settings):
    first = idempotency.claim(
        owner="user:1", key="k", method="POST", path=URL, body=b""
    )
    idempotency.settle(claim=first, response=HttpResponse("x"), subject="cust-1")
    IdempotencyRecord.objects.update(
        created_at=timezone.now()
        - timedelta(hours=settings.AMANAH_IDEMPOTENCY_HOURS + 1)
    )
    again = idempotency.claim(
        owner="user:1", key="k", method="POST", path=URL, body=b""
    )
    assert isinstance(again, idempotency.Claim)
    assert IdempotencyRecord.objects.get().subject == ""
