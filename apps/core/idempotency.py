"""Safe retries: a change sent with an `Idempotency-Key` runs once; a retry with the
same key gets the first answer again (apps.core.api.ApiView calls this module).

- `claim`: the first request with a key claims it (a record in progress, with a lease
  of `AMANAH_IDEMPOTENCY_LEASE_SECONDS`) in a statement of its own, committed before
  the handler runs, so a concurrent duplicate sees it: that one gets a 409 while the
  lease holds, the kept answer once there is one (`StoredResponse`), and takes the
  claim over once the lease has run out (the process that held it died).
- `settle`: the answer is kept, in the handler's transaction: the change and its
  answer commit together. Kept are the outcomes a retry must get again: a success
  (2xx) and a refusal of the body itself (400, 409, 422). An answer a retry may well
  change (401, 403, 404, 412, 428, 429: credentials, a role, a version, a limit) is
  not kept: the claim is released. An error of ours (5xx) is not kept and its change
  is rolled back (apps.core.api.ApiView), so a retry makes it once.
- A record may name its subject (the customer the answer shows): erasing the customer
  forgets it (`idempotency_forget`), so no kept answer outlives the data it shows.
- Keys are per owner (a token, or a user's session): another owner's key is another
  key. The same key with another method, path or body is a 422. Records older than
  `AMANAH_IDEMPOTENCY_HOURS` count as absent; the beat task `core.idempotency_purge`
  deletes them.
- A kept body is sealed (AES-GCM, a key derived from SECRET_KEY): it can hold what the
  caller saw of a customer. One that no longer opens (the secret was rotated past its
  fallbacks) is a 409: the change was made, its answer is lost, and running it again
  would make it twice. Neither keys nor bodies are logged.

Lock order (apps/core/db.py): the record is claimed and committed before the
handler's transaction begins; settling updates it last, after the audit chain.
"""

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse, HttpResponseBase
from django.utils import timezone

from apps.core.errors import Conflict, DomainError, Unprocessable
from apps.core.models import IdempotencyRecord, IdempotencyState

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The headers of an answer that are kept with it and replayed.
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
# Visible ASCII, no spaces: what a client can send in a header unchanged.
_KEY_FORMAT = re.compile(r"[\x21-\x7e]{1,255}")
# How often `claim` looks again when the record changes under it (a concurrent claim,
# release or purge) before answering "in progress".
_CLAIM_ATTEMPTS = 5
PURGE_BATCH_SIZE = 5000

_SEAL_INFO = b"amanah:core:idempotency-body:v1"
_SEAL_FORMAT = b"\x01"
_NONCE_BYTES = 12


class IdempotencyInProgress(Conflict):
    """A request with this key is still running: retry in a moment."""

    code = "idempotency_in_progress"
    headers = {"Retry-After": "1"}  # apps.core.exceptions sends them


class IdempotencyLeaseLost(Conflict):
    """This request outran its claim and another attempt with its key took it over;
    its change is rolled back (it raises inside the handler's transaction)."""

    code = "idempotency_in_progress"
    headers = {"Retry-After": "1"}  # apps.core.exceptions sends them


@dataclass(frozen=True)
class Claim:
    """A key claimed for one run: the record, and the lease that makes it this run's
    (a run that took it over after an expired lease holds another)."""

    record_id: int
    owner: str
    key: str = field(repr=False)
    locked_until: datetime


@dataclass(frozen=True)
class StoredResponse:
    """The answer kept for a key, to replay."""

    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def response(self) -> HttpResponse:
        response = HttpResponse(self.body, status=self.status)
        if "Content-Type" not in self.headers:
            del response["Content-Type"]
        for name, value in self.headers.items():
            response[name] = value
        response[REPLAYED_HEADER] = "true"
        return response


def claim(
    *, owner: str, key: str, method: str, path: str, body: bytes
) -> Claim | StoredResponse:
    """Claim `key` for this request, or the answer kept for it. Raises DomainError (a
    malformed key), IdempotencyInProgress (it is running elsewhere), Unprocessable
    (the key was used for another request)."""
    if not _KEY_FORMAT.fullmatch(key):
        raise DomainError(
            f"{HEADER} must be 1 to 255 visible ASCII characters (no spaces).",
            code="idempotency_key_invalid",
        )
    fingerprint = _fingerprint(method=method, path=path, body=body)
    for _ in range(_CLAIM_ATTEMPTS):
        now = timezone.now()
        lease = now + timedelta(seconds=settings.AMANAH_IDEMPOTENCY_LEASE_SECONDS)
        record_id = _insert(
            owner=owner, key=key, fingerprint=fingerprint, lease=lease, now=now
        )
        if record_id is not None:
            return Claim(record_id=record_id, owner=owner, key=key, locked_until=lease)
        record = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
        if record is None:
            continue  # released or purged since the insert: insert again
        if record.created_at <= now - _window():
            # Past the window: as if absent; a new run, in the same row.
            if _take_over(record, fingerprint=fingerprint, lease=lease, now=now):
                return Claim(
                    record_id=record.pk, owner=owner, key=key, locked_until=lease
                )
            continue
        if record.fingerprint != fingerprint:
            raise Unprocessable(
                f"This {HEADER} was used for another request (another method, "
                "path or body); use a new key for a new request.",
                code="idempotency_key_reused",
            )
        if record.state == IdempotencyState.DONE:
            stored = _stored(record)
            if stored is not None:
                logger.info("idempotency.replayed", extra={"record_id": record.pk})
                return stored
            # Its body no longer opens: the change was made; running it again would
            # make it twice.
            raise Conflict(
                f"The request with this {HEADER} was carried out, but its answer can "
                "no longer be read. Read the object to see its state; use a new key "
                "for a new request.",
                code="idempotency_answer_lost",
            )
        if record.locked_until is not None and record.locked_until > now:
            break
        # The run that claimed it stopped without an answer: this one takes over.
        if _take_over(
            record, fingerprint=fingerprint, lease=lease, now=record.created_at
        ):
            logger.warning("idempotency.taken_over", extra={"record_id": record.pk})
            return Claim(record_id=record.pk, owner=owner, key=key, locked_until=lease)
    raise IdempotencyInProgress(
        f"A request with this {HEADER} is still being processed; retry shortly.",
        code="idempotency_in_progress",
    )


def answer_is_kept(status: int) -> bool:
    """Whether a retry gets this answer again (see the module's docstring)."""
    return 200 <= status < 300 or status in (400, 409, 422)


def idempotency_forget(*, subjects: Iterable[Any]) -> int:
    """Forget the kept answers that show these subjects (customers' ids): their data
    is being erased, and no copy of it may outlive the erasure. A retry of one of
    those requests then runs again (and finds the customer erased)."""
    names = [str(subject) for subject in subjects]
    if not names:
        return 0
    deleted, _ = IdempotencyRecord.objects.filter(subject__in=names).delete()
    return deleted


def settle(*, claim: Claim, response: HttpResponseBase, subject: Any = None) -> None:
    """Keep `response` as the answer to `claim`'s key (a status below 500), or
    release the claim. Run inside the handler's transaction, the answer commits with
    the change. Raises IdempotencyLeaseLost (inside a transaction) when another run
    has taken the key over meanwhile."""
    status = response.status_code
    if not answer_is_kept(status) or getattr(response, "streaming", False):
        # Not an answer a retry must get again; a stream is not held in memory.
        release(claim=claim)
        return
    headers = {
        name: response[name] for name in KEPT_HEADERS if response.has_header(name)
    }
    sealed = _seal(
        bytes(response.content),  # type: ignore[attr-defined]
        aad=_aad(claim.record_id, claim.owner, claim.key),
    )
    kept = IdempotencyRecord.objects.filter(
        pk=claim.record_id,
        state=IdempotencyState.IN_PROGRESS,
        locked_until=claim.locked_until,
    ).update(
        state=IdempotencyState.DONE,
        locked_until=None,
        status_code=status,
        headers=headers,
        body=sealed,
        subject=subject or "",
    )
    if kept:
        return
    logger.warning("idempotency.lease_lost", extra={"record_id": claim.record_id})
    if connection.in_atomic_block:
        # Roll this run's change back: the run that took the key over makes it.
        raise IdempotencyLeaseLost(
            f"This request took too long and another with the same {HEADER} took "
            "over; this one changed nothing. Retry shortly for its answer.",
            code="idempotency_in_progress",
        )


def release(*, claim: Claim) -> None:
    """Forget `claim` while it is still in progress and this run's: a retry runs the
    request again. Nothing happens when it is done, gone or taken over."""
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.filter(
                pk=claim.record_id,
                state=IdempotencyState.IN_PROGRESS,
                locked_until=claim.locked_until,
            ).delete()
    except DatabaseError:
        # The lease runs out by itself; the error that brought us here matters more.
        logger.warning(
            "idempotency.release_failed", extra={"record_id": claim.record_id}
        )


def idempotency_records_purge(
    *, now: datetime | None = None, batch_size: int = PURGE_BATCH_SIZE
) -> int:
    """Delete the records past `AMANAH_IDEMPOTENCY_HOURS`, in batches; how many."""
    cutoff = (now or timezone.now()) - _window()
    total = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff)
            .order_by()
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            # The cutoff again: a record claimed anew meanwhile stays.
            total += IdempotencyRecord.objects.filter(
                pk__in=ids, created_at__lt=cutoff
            ).delete()[0]
        if len(ids) < batch_size:
            break
    logger.info("idempotency.purged", extra={"count": total})
    return total


def _window() -> timedelta:
    return timedelta(hours=settings.AMANAH_IDEMPOTENCY_HOURS)


def _fingerprint(*, method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _insert(
    *, owner: str, key: str, fingerprint: str, lease: datetime, now: datetime
) -> int | None:
    """A new record in progress for (owner, key), committed at once outside a
    transaction; its id, or None when one exists (the unique constraint decides,
    under any concurrency: a duplicate insert waits for the first to commit)."""
    meta = IdempotencyRecord._meta
    fields = {field.name: field for field in meta.concrete_fields}
    values: dict[str, Any] = {
        "owner": owner,
        "key": key,
        "fingerprint": fingerprint,
        "state": IdempotencyState.IN_PROGRESS.value,
        "locked_until": lease,
        "headers": {},
        "created_at": now,
    }
    quote = connection.ops.quote_name
    column = {name: quote(str(field.column)) for name, field in fields.items()}
    params = [
        fields[name].get_db_prep_save(value, connection)
        for name, value in values.items()
    ]
    # Names from the model, values bound as parameters.
    names = ", ".join(column[name] for name in values)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608  # nosec B608
        f"VALUES ({', '.join(['%s'] * len(params))}) "
        f"ON CONFLICT ({column['owner']}, {column['key']}) DO NOTHING "
        f"RETURNING {column['id']}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _take_over(
    record: IdempotencyRecord, *, fingerprint: str, lease: datetime, now: datetime
) -> bool:
    """Claim `record` for a new run if it is still as read: of two runs taking it
    over at once, one does."""
    return bool(
        IdempotencyRecord.objects.filter(
            pk=record.pk,
            state=record.state,
            locked_until=record.locked_until,
            created_at=record.created_at,
        ).update(
            state=IdempotencyState.IN_PROGRESS,
            fingerprint=fingerprint,
            locked_until=lease,
            status_code=None,
            headers={},
            body=None,
            subject="",
            created_at=now,
        )
    )


def _stored(record: IdempotencyRecord) -> StoredResponse | None:
    """The kept answer, or None when its body does not open."""
    if record.status_code is None or record.body is None:
        return None
    body = _open(bytes(record.body), aad=_aad(record.pk, record.owner, record.key))
    if body is None:
        logger.warning("idempotency.unreadable", extra={"record_id": record.pk})
        return None
    return StoredResponse(
        status=record.status_code, headers=dict(record.headers or {}), body=body
    )


# Sealing kept bodies.


def _aad(record_id: int, owner: str, key: str) -> bytes:
    """A body opens only in its own record, for its own owner and key."""
    return f"amanah:v1:core_idempotencyrecord.body:{record_id}:{owner}:{key}".encode()


@lru_cache(maxsize=8)
def _cipher(secret: str) -> AESGCM:
    """The AES-256-GCM key for kept bodies, derived from a SECRET_KEY (HKDF-SHA256
    under a label of its own: no other use of the secret yields it)."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO
    ).derive(secret.encode())
    return AESGCM(derived)


def _seal(plain: bytes, *, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return (
        _SEAL_FORMAT + nonce + _cipher(settings.SECRET_KEY).encrypt(nonce, plain, aad)
    )


def _open(blob: bytes, *, aad: bytes) -> bytes | None:
    """The body under the current SECRET_KEY or one of its fallbacks; None if none
    opens it."""
    if not blob.startswith(_SEAL_FORMAT):
        return None
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        try:
            return _cipher(secret).decrypt(nonce, sealed, aad)
        except InvalidTag:
            continue
    return None
