"""The signing key (apps/crypto/signing.py): env and pkcs11 (SoftHSM2), the JWKS."""

import base64
import json
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from pkcs11 import Attribute, ObjectClass

from apps.audit.models import AuditEvent
from apps.crypto.checks import check_keys
from apps.crypto.errors import KeyRingError, SignatureInvalid
from apps.crypto.signing import (
    PublicKey,
    _pkcs11_signer,
    canonical_json,
    document_sign,
    document_verify,
    jwks,
    public_key_b64,
    public_keys,
    public_keys_from_jwks,
    signer,
    signing_key_generate,
)
from config.dev_secrets import load_dev_secrets


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _other_seed() -> str:
    return signing_key_generate()


def test_canonical_json_sorts_keys_without_spaces_in_utf8():
    assert canonical_json({"b": 1, "a": "é", "c": {"z": 0, "y": [1, 2]}}) == (
        '{"a":"é","b":1,"c":{"y":[1,2],"z":0}}'.encode()
    )


def test_a_signed_document_verifies_and_the_kid_is_the_rfc_7638_thumbprint():
    document = document_sign({"type": "t", "n": 1})
    assert document["signature"]["alg"] == "EdDSA"
    assert document_verify(document, type="t", what="a t").content == {
        "type": "t",
        "n": 1,
    }
    # RFC 8037 appendix A.3: the thumbprint of its example key.
    example = PublicKey(_b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    assert example.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda d: d.update(n=2), "bad_signature"),
        (lambda d: d["signature"].update(kid="nobody"), "unknown_key"),
        (
            lambda d: d["signature"].update(value=d["signature"]["value"][:-2]),
            "malformed",
        ),
        (lambda d: d["signature"].update(alg="RS256"), "malformed"),
        (lambda d: d.pop("signature"), "unsigned"),
        (lambda d: d.update(type="other"), "not_a_document"),
    ],
    ids=["content", "kid", "value", "alg", "unsigned", "type"],
)
def test_a_changed_document_fails_with_a_reason(change, code):
    document = document_sign({"type": "t", "n": 1})
    change(document)
    with pytest.raises(SignatureInvalid) as caught:
        document_verify(document, type="t", what="a t")
    assert caught.value.code == code


def test_a_document_signed_by_another_key_fails(settings):
    document = document_sign({"type": "t", "n": 1})
    settings.AMANAH_SIGNING_KEY = _other_seed()
    with pytest.raises(SignatureInvalid, match="unknown key"):
        document_verify(document, type="t", what="a t")


def test_the_signing_key_setting_is_checked(settings):
    settings.AMANAH_SIGNING_KEY = base64.b64encode(b"short").decode()
    with pytest.raises(KeyRingError, match="must be 32 bytes"):
        signer()
    settings.AMANAH_SIGNING_KEY = ""
    with pytest.raises(KeyRingError, match="AMANAH_SIGNING_KEY is not set"):
        signer()


def test_the_well_known_jwks_verifies_a_document_with_plain_cryptography(client):
    response = client.get("/.well-known/amanah-signing-keys.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=3600"
    (key,) = response.json()["keys"]
    assert {k: key[k] for k in ("kty", "crv", "use", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
    }
    document = document_sign({"type": "t", "text": "é"})
    assert key["kid"] == document["signature"]["kid"]
    # What the README shows, with nothing of Amanah's.
    public = Ed25519PublicKey.from_public_bytes(_b64url_decode(key["x"]))
    body = {k: v for k, v in document.items() if k != "signature"}
    public.verify(
        _b64url_decode(document["signature"]["value"]),
        json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode(),
    )


def test_the_env_key_is_the_seed_in_amanah_signing_key(settings):
    seed = Ed25519PrivateKey.generate()
    settings.AMANAH_SIGNING_KEY = base64.b64encode(seed.private_bytes_raw()).decode()
    (key,) = public_keys()
    assert key.raw == seed.public_key().public_bytes_raw()


def test_public_keys_from_a_jwks_copy():
    keys = public_keys_from_jwks(jwks())
    assert [k.kid for k in keys] == [k.kid for k in public_keys()]
    with pytest.raises(SignatureInvalid, match="not a JWKS"):
        public_keys_from_jwks({"nope": 1})


def test_development_secrets_gain_a_signing_key_kept_across_restarts(tmp_path, capsys):
    path = tmp_path / ".dev-secrets.env"
    # A file from before the signing key.
    path.write_text(
        "DJANGO_SECRET_KEY=x\nAMANAH_MASTER_KEYS=1:y\nAMANAH_BLIND_INDEX_KEY=z\n"
    )
    first = load_dev_secrets(path)
    assert "added AMANAH_SIGNING_KEY" in capsys.readouterr().err
    assert len(base64.b64decode(first["AMANAH_SIGNING_KEY"])) == 32
    assert first["DJANGO_SECRET_KEY"] == "x"
    assert load_dev_secrets(path) == first
    assert capsys.readouterr().err == ""


# The pkcs11 provider on SoftHSM2 -------------------------------------------------


@pytest.mark.django_db
def test_the_hsm_makes_a_non_extractable_ed25519_key_once_and_signs_inside(
    hsm, settings
):
    settings.AMANAH_SIGNING_KEY = ""
    document = document_sign({"type": "t", "n": 1})
    key = signer()
    assert settings.AMANAH_PKCS11_KEY_LABEL + "-signing" in key.where
    assert document_verify(document, type="t", what="a t").kid == key.public_key.kid
    made = AuditEvent.objects.get(action="crypto.signing_key_created")
    assert made.details == {"kid": key.public_key.kid, "provider": "pkcs11"}

    def private(session):
        (found,) = session.get_objects(
            {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.LABEL: settings.AMANAH_PKCS11_KEY_LABEL + "-signing",
            }
        )
        return found

    found = key._call(private)
    assert found[Attribute.SENSITIVE] is True
    assert found[Attribute.EXTRACTABLE] is False
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        found[Attribute.VALUE]
    # Another process (a new signer object) finds the same key, makes no second one.
    _pkcs11_signer.cache_clear()
    assert signer().public_key == key.public_key
    assert AuditEvent.objects.filter(action="crypto.signing_key_created").count() == 1
    assert [k["kid"] for k in jwks()["keys"]] == [key.public_key.kid]


@pytest.mark.django_db
def test_under_the_hsm_the_old_env_key_is_still_published_but_signs_nothing(
    hsm, settings
):
    settings.AMANAH_KEY_PROVIDER = "env"
    env_document = document_sign({"type": "t", "n": 1})  # before the move
    settings.AMANAH_KEY_PROVIDER = "pkcs11"
    hsm_document = document_sign({"type": "t", "n": 2})
    assert hsm_document["signature"]["kid"] != env_document["signature"]["kid"]
    kids = [k["kid"] for k in jwks()["keys"]]
    assert kids == [
        hsm_document["signature"]["kid"],
        env_document["signature"]["kid"],
    ]
    for document in (env_document, hsm_document):
        document_verify(document, type="t", what="a t")


def test_the_jwks_is_public(db):
    response = Client().get(reverse("signing-keys"))
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.django_db
def test_reading_the_keys_under_the_hsm_makes_no_key(hsm, settings):
    """An anonymous GET of the JWKS, or a verification, must not make the key pair on
    the token (nor write to the trail): only the first signature does."""
    settings.AMANAH_SIGNING_KEY = ""
    response = Client().get(reverse("signing-keys"))
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    document = {"type": "t", "signature": {"alg": "EdDSA", "kid": "k", "value": "A"}}
    with pytest.raises(SignatureInvalid):
        document_verify(document, type="t", what="a t")
    key = signer()
    assert key._call(key._find) is None
    assert not AuditEvent.objects.filter(action="crypto.signing_key_created").exists()
    with pytest.raises(KeyRingError, match="not on the token yet"):
        key.public_key  # noqa: B018 - the property reads the token
    signed = document_sign({"type": "t", "n": 1})
    assert [k["kid"] for k in jwks()["keys"]] == [signed["signature"]["kid"]]
    assert AuditEvent.objects.filter(action="crypto.signing_key_created").count() == 1


@pytest.mark.django_db
def test_before_the_first_signature_jwks_reads_look_on_the_token_once(
    hsm, settings, monkeypatch
):
    """The JWKS is a public URL: before the key exists, reads remember that it is
    absent rather than each looking on the token under the session lock; the first
    signature publishes it at once."""
    from apps.crypto.signing import Pkcs11Signer

    settings.AMANAH_SIGNING_KEY = ""
    lookups = []
    find = Pkcs11Signer._find

    def counted(self, session):
        lookups.append(1)
        return find(self, session)

    monkeypatch.setattr(Pkcs11Signer, "_find", counted)
    for _ in range(2):
        response = Client().get(reverse("signing-keys"))
        assert response.json() == {"keys": []}
    assert len(lookups) == 1
    signed = document_sign({"type": "t", "n": 1})
    assert (
        Client().get(reverse("signing-keys")).json()["keys"][0]["kid"]
        == (signed["signature"]["kid"])
    )


def test_a_key_another_process_made_verifies_here_at_once(db, hsm, settings):
    """A process that remembered the key as absent looks again for a receipt signed
    by a key it does not know: another process may have made it since."""
    from apps.crypto.signing import Pkcs11Signer, b64url

    settings.AMANAH_SIGNING_KEY = ""
    assert signer().public_keys() == []  # this process: absent, remembered
    other = Pkcs11Signer(
        library=settings.AMANAH_PKCS11_LIBRARY,
        token=settings.AMANAH_PKCS11_TOKEN,
        pin=settings.AMANAH_PKCS11_PIN,
        label=settings.AMANAH_PKCS11_KEY_LABEL,
        legacy="",
    )
    body = {"type": "t", "n": 2}
    value = other.sign(canonical_json(body))
    document = {
        **body,
        "signature": {
            "alg": "EdDSA",
            "kid": other.public_key.kid,
            "value": b64url(value),
        },
    }
    assert document_verify(document, type="t", what="a t")


def test_a_lone_surrogate_is_not_valid_not_a_crash():
    document = document_sign({"type": "t", "text": "ok"})
    document["text"] = "\ud800"
    with pytest.raises(SignatureInvalid, match="not valid Unicode") as caught:
        document_verify(document, type="t", what="a t")
    assert caught.value.code == "malformed"


def test_retired_public_keys_are_published_and_checked(settings):
    old = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32).public_key()
    settings.AMANAH_SIGNING_PUBLIC_KEYS_RETIRED = (
        " " + base64.b64encode(old.public_bytes_raw()).decode() + ", "
    )
    keys = public_keys()
    assert len(keys) == 2
    assert keys[1].raw == old.public_bytes_raw()
    assert public_key_b64(keys[1]) == settings.AMANAH_SIGNING_PUBLIC_KEYS_RETIRED[1:-2]
    settings.AMANAH_SIGNING_PUBLIC_KEYS_RETIRED = "bm90IGEga2V5"
    with pytest.raises(KeyRingError, match="key 1 is not the base64"):
        public_keys()
    assert [e.id for e in check_keys(None)] == ["crypto.E004"]


def test_the_env_example_names_the_signing_keys_companions():
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name in (
        "AMANAH_SIGNING_KEY",
        "AMANAH_SIGNING_PUBLIC_KEYS_RETIRED",
        "AMANAH_RECEIPT_VERIFY_RATE",
    ):
        assert f"\n# {name}=" in example
        assert hasattr(django_settings, name)
