"""DKIM: generate a key, publish it in a loopback DNS zone, sign, verify with dkimpy."""

import dkim as dkimpy
import pytest
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from smtpconfig.dkim import dkim_key_generate, dkim_sign, dkim_txt_record, dkim_txt_strings
from smtpconfig.dns_health import dns_resolver, dns_txt
from smtpconfig.models import DkimKey, MailSettings
from smtpconfig.recording import messages_plan
from smtpconfig.transport import SmtpConnection
from smtpconfig.unsubscribe import unsubscribe_headers

pytestmark = pytest.mark.django_db


def loopback_dnsfunc(name, timeout=5):
    """dkimpy's DNS hook, asking the loopback server Mailadmin's resolver points at."""
    text = name.decode() if isinstance(name, bytes) else name
    records = dns_txt(resolver=dns_resolver(), name=text.rstrip("."))
    return records[0].encode() if records else None


def publish(zone_server, key: DkimKey) -> None:
    name, value = dkim_txt_record(key=key)
    strings = " ".join(f'"{part}"' for part in dkim_txt_strings(value))
    zone_server.resolver.add(f"{name}. 300 IN TXT {strings}\n")


def raw_message(**headers) -> bytes:
    message = EmailMessage(
        subject="Tee times for Saturday",
        body="Grüße vom Platz.\n" * 3,
        from_email="Golf Club <office@club.test>",
        to=["member@example.test"],
        headers=headers,
    )
    return message.message().as_bytes()


def test_generated_key_is_encrypted_at_rest_and_2048_bits():
    key = dkim_key_generate(domain="Club.Test.", selector="s1")
    assert (key.domain, key.selector, key.is_active) == ("club.test", "s1", True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM smtpconfig_dkimkey WHERE id = %s", [key.pk])
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored
    assert "PRIVATE KEY" in str(DkimKey.objects.get(pk=key.pk).private_key)
    name, value = dkim_txt_record(key=key)
    assert name == "s1._domainkey.club.test"
    assert value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # a 2048-bit SubjectPublicKeyInfo


def test_regenerating_replaces_the_key_of_the_domain():
    first = dkim_key_generate(domain="club.test")
    second = dkim_key_generate(domain="club.test", selector="s2")
    assert DkimKey.objects.count() == 1
    assert first.pk == second.pk
    assert DkimKey.objects.get().selector == "s2"


@pytest.mark.parametrize("domain", ["", "localhost", "bad domain.test", "-x.test", "a..test"])
def test_invalid_domain_is_refused_and_nothing_stored(domain):
    with pytest.raises(ValidationError):
        dkim_key_generate(domain=domain)
    assert not DkimKey.objects.exists()


def test_invalid_selector_is_refused():
    with pytest.raises(ValidationError):
        dkim_key_generate(domain="club.test", selector="no spaces")


def test_signature_verifies_against_the_published_key(dns_zone):
    zone = dns_zone("")
    key = dkim_key_generate(domain="club.test", selector="s2026")
    publish(zone, key)
    signed = dkim_sign(raw=raw_message(), from_domain="club.test")
    assert signed.startswith(b"DKIM-Signature:")
    assert dkimpy.verify(signed, dnsfunc=loopback_dnsfunc)


def test_signature_fails_when_the_body_is_changed(dns_zone):
    zone = dns_zone("")
    publish(zone, dkim_key_generate(domain="club.test"))
    signed = dkim_sign(raw=raw_message(), from_domain="club.test")
    assert not dkimpy.verify(signed.replace(b"Platz", b"Plotz"), dnsfunc=loopback_dnsfunc)


def test_signature_fails_before_the_key_is_published(dns_zone):
    dns_zone("")
    dkim_key_generate(domain="club.test")
    signed = dkim_sign(raw=raw_message(), from_domain="club.test")
    assert not dkimpy.verify(signed, dnsfunc=loopback_dnsfunc)


def test_unsubscribe_headers_are_covered_by_the_signature(dns_zone, settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "PUBLIC_URL": "https://mail.club.test"}
    zone = dns_zone("")
    publish(zone, dkim_key_generate(domain="club.test"))
    raw = raw_message(**unsubscribe_headers(address="member@example.test"))
    signed = dkim_sign(raw=raw, from_domain="club.test")
    signature_header = signed.split(b"\r\n\r\n")[0].split(b"\nFrom:")[0]
    signed_names = (
        dkimpy.util.parse_tag_value(
            signature_header.split(b":", 1)[1].replace(b"\r\n", b"").replace(b" ", b"")
        )[b"h"]
        .lower()
        .split(b":")
    )
    assert b"list-unsubscribe" in signed_names
    assert b"list-unsubscribe-post" in signed_names
    assert dkimpy.verify(signed, dnsfunc=loopback_dnsfunc)
    tampered = signed.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Nope")
    assert not dkimpy.verify(tampered, dnsfunc=loopback_dnsfunc)


def test_no_active_key_leaves_the_bytes_unchanged():
    raw = raw_message()
    assert dkim_sign(raw=raw, from_domain="club.test") == raw
    key = dkim_key_generate(domain="club.test")
    key.is_active = False
    key.save()
    assert dkim_sign(raw=raw, from_domain="club.test") == raw
    assert dkim_sign(raw=raw, from_domain="sub.club.test") == raw
    assert dkim_sign(raw=raw, from_domain="") == raw


def test_signed_message_through_the_catching_server_verifies(dns_zone, sink, make_server):
    zone = dns_zone("")
    publish(zone, dkim_key_generate(domain="club.test"))
    signed = dkim_sign(raw=raw_message(), from_domain="club.test")
    smtp = SmtpConnection(make_server(sink=sink))
    smtp.open()
    try:
        result = smtp.send(
            envelope_from="office@club.test", recipients=["member@example.test"], raw=signed
        )
    finally:
        smtp.close()
    assert result.outcome == "accepted"
    (received,) = sink.received
    assert received.message["DKIM-Signature"]
    assert dkimpy.verify(received.content, dnsfunc=loopback_dnsfunc)


def test_a_call_of_many_messages_reads_the_keys_once_and_signs_each(make_server):
    make_server(is_default=True, from_filter="club.test", sender_email="office@club.test")
    dkim_key_generate(domain="club.test")
    messages = [
        EmailMessage(f"News {n}", "Body", "office@club.test", [f"m{n}@example.test"])
        for n in range(5)
    ]
    MailSettings.load()  # the settings row exists, as on any site past its first call
    with CaptureQueriesContext(connection) as queries:
        _config, plans = messages_plan(email_messages=messages)
    key_reads = [q["sql"] for q in queries if DkimKey._meta.db_table in q["sql"]]
    assert len(key_reads) == 1
    assert all(plan.raw.startswith(b"DKIM-Signature:") for plan in plans)
