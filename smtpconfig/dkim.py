"""DKIM per sender domain: generate a key pair, tell what to publish, sign stored bytes.

The private key is kept encrypted (``DkimKey.private_key``); signing happens on the exact
bytes that are sent, so the signature covers what the receiver sees.
"""

import base64
import re

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from smtpconfig.exceptions import InvalidMessage
from smtpconfig.models import DkimKey

# 2048 bits: large enough for every receiver, small enough to fit one DNS answer over UDP.
DKIM_KEY_BITS = 2048
# RFC 8058 4: the signature must cover List-Unsubscribe and List-Unsubscribe-Post, or a
# receiver will not offer one-click unsubscribe. dkimpy's default list lacks the second one.
_ALWAYS_SIGNED = (b"list-unsubscribe", b"list-unsubscribe-post")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def dkim_normalize_domain(domain: str) -> str:
    """Lower case, IDNA, no trailing dot; ``ValidationError`` naming the value otherwise."""
    text = (domain or "").strip().lower().rstrip(".")
    try:
        ascii_domain = text.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValidationError(
            _("“%(value)s” is not a domain name."), code="invalid", params={"value": domain}
        )
    return ascii_domain


def dkim_validate_selector(selector: str) -> str:
    text = (selector or "").strip().lower()
    if not text or not all(_DOMAIN_LABEL.match(label) for label in text.split(".")):
        raise ValidationError(
            _("“%(value)s” is not a valid DKIM selector."),
            code="invalid",
            params={"value": selector},
        )
    return text


def dkim_key_generate(*, domain: str, selector: str = "mailadmin", acting_user=None) -> DkimKey:
    """Create the key pair of ``domain``, or replace it (a new key needs a new DNS record)."""
    domain = dkim_normalize_domain(domain)
    selector = dkim_validate_selector(selector)
    private = rsa.generate_private_key(public_exponent=65537, key_size=DKIM_KEY_BITS)
    private_pem = private.private_bytes(
        encoding=serialization.Encoding.PEM,
        # dkimpy reads PKCS#1 ("BEGIN RSA PRIVATE KEY") only.
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    public_der = private.public_key().public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    with transaction.atomic():
        key, _created = DkimKey.objects.update_or_create(
            domain=domain,
            defaults={
                "selector": selector,
                "private_key": private_pem,
                "public_key": base64.b64encode(public_der).decode("ascii"),
                "is_active": True,
                "created_by": acting_user,
            },
        )
    return key


def dkim_txt_record(*, key: DkimKey) -> tuple[str, str]:
    """(name, value) of the TXT record to publish for ``key``."""
    return f"{key.selector}._domainkey.{key.domain}", f"v=DKIM1; k=rsa; p={key.public_key}"


def dkim_txt_strings(value: str) -> list[str]:
    """``value`` cut into the 255-character strings one TXT record is made of."""
    return [value[start : start + 255] for start in range(0, len(value), 255)]


def _line_separator(raw: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in raw[: raw.find(b"\n") + 1 or len(raw)] else b"\n"


def dkim_active_keys() -> dict[str, DkimKey]:
    """Every active key by its domain, in one query (a call of many messages reads them once)."""
    return {key.domain: key for key in DkimKey.objects.filter(is_active=True)}


def dkim_sign(*, raw: bytes, from_domain: str, keys: dict[str, DkimKey] | None = None) -> bytes:
    """``raw`` with a DKIM-Signature for ``from_domain`` prepended, or unchanged without a key.

    Only an active key of exactly that domain signs: a signature by another domain would not
    align with the From for DMARC. ``keys`` are the active keys already read
    (``dkim_active_keys()``); without them the domain's key is looked up.
    """
    try:
        domain = dkim_normalize_domain(from_domain)
    except ValidationError:
        return raw
    if keys is None:
        key = DkimKey.objects.filter(domain=domain, is_active=True).first()
    else:
        key = keys.get(domain)
    if key is None:
        return raw
    linesep = _line_separator(raw)
    try:
        signer = dkimpy.DKIM(raw, linesep=linesep)
        present = {name.lower() for name, _value in signer.headers}
        include = signer.default_sign_headers() + [
            name for name in _ALWAYS_SIGNED if name in present and name not in signer.should_sign
        ]
        signature = signer.sign(
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            str(key.private_key).encode("ascii"),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
    except dkimpy.DKIMException as error:
        raise InvalidMessage(
            _("The message cannot be DKIM-signed: %(error)s") % {"error": error},
            value=domain,
        ) from error
    return signature + raw
