"""The whole path: the CRM's send_mail, the outbox, a drain pass, an XOAUTH2 server."""

import pytest
from django.core.mail import send_mail
from django.utils import timezone

from smtpconfig.delivery import outbox_drain
from smtpconfig.exceptions import DeliveryFailed
from smtpconfig.models import MailSettings, OutgoingMessage, SmtpServer
from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, TENANT_ID

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]


def crm_sends(count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        send_mail(
            f"Competition results {number}",
            "Congratulations to all players.",
            "office@club.example",
            [f"member{number}@example.org"],
        )


@pytest.fixture(autouse=True)
def _routing_mailer(routing_mailer):
    """Every test here goes through the real backend."""


def test_queued_batch_uses_one_token_and_a_revoked_app_pauses_the_server(
    microsoft_server, token_endpoint, xoauth2_peer
):
    assert MailSettings.load().delivery == MailSettings.Delivery.QUEUE
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    SmtpServer.objects.filter(pk=server.pk).update(is_default=True)

    crm_sends(6)
    report = outbox_drain()

    assert report.sent == 6
    assert len(peer.received) == 6
    assert token_endpoint.requests["microsoft_token"] == 1

    token_endpoint.revoke_microsoft_app(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        status=400,
        error="unauthorized_client",
        description="AADSTS7000112: Application 'Mailadmin SMTP' is disabled.",
    )
    crm_sends(3, start=6)
    outbox_drain()

    server.refresh_from_db()
    assert server.paused_until > timezone.now()
    assert "Credentials rejected" in server.pause_reason
    assert "AADSTS7000112: Application 'Mailadmin SMTP' is disabled." in server.pause_reason
    assert CLIENT_SECRET not in server.pause_reason
    waiting = OutgoingMessage.objects.filter(
        subject__in=[f"Competition results {n}" for n in (6, 7, 8)]
    )
    assert waiting.count() == 3
    assert not waiting.filter(status=OutgoingMessage.Status.FAILED).exists()
    assert len(peer.received) == 6


def test_direct_delivery_signs_in_with_xoauth2_and_reports_a_rejection(
    microsoft_server, token_endpoint, xoauth2_peer
):
    MailSettings.objects.update_or_create(pk=1, defaults={"delivery": MailSettings.Delivery.DIRECT})
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    SmtpServer.objects.filter(pk=server.pk).update(is_default=True)

    crm_sends(2)
    assert len(peer.received) == 2
    assert token_endpoint.requests["microsoft_token"] == 1

    token_endpoint.revoke_microsoft_app(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        status=401,
        error="invalid_client",
        description="AADSTS7000222: The provided client secret keys for app are expired.",
    )
    with pytest.raises(DeliveryFailed):
        crm_sends(1, start=2)

    failed = OutgoingMessage.objects.get(subject="Competition results 2")
    assert "AADSTS7000222" in failed.last_error
    server.refresh_from_db()
    assert "AADSTS7000222" in server.pause_reason
    assert len(peer.received) == 2
