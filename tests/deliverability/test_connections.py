"""Each server's transport picks its connection; a service's message id is kept for tracking."""

import pytest

from smtpconfig.connections import server_connection
from smtpconfig.delivery import message_record_attempt
from smtpconfig.esp import EspConnection, EspSendResult
from smtpconfig.models import OutgoingMessage
from smtpconfig.replies import Outcome
from smtpconfig.transport import RecipientResult, SmtpConnection

pytestmark = pytest.mark.django_db


def test_smtp_servers_get_smtp_and_services_get_their_anymail_connection(make_server):
    smtp = make_server(name="relay")
    postmark = make_server(
        name="postmark", transport="postmark", credentials='{"server_token": "t"}'
    )
    assert isinstance(server_connection(smtp), SmtpConnection)
    assert isinstance(server_connection(postmark), EspConnection)


def test_an_accepted_service_result_stores_the_services_message_id(make_server):
    server = make_server(name="postmark", transport="postmark", credentials='{"server_token": "t"}')
    message = OutgoingMessage.objects.create(
        server=server,
        status=OutgoingMessage.Status.SENDING,
        message_id="<1@club.example>",
        from_email="office@club.example",
        envelope_from="office@club.example",
        raw=b"Subject: x\r\n\r\nbody",
    )
    message.recipients.create(email="member@member.example")
    result = EspSendResult(
        Outcome.ACCEPTED,
        200,
        "OK",
        [RecipientResult("member@member.example", Outcome.ACCEPTED, 200, "queued")],
        provider_message_ids=("b7bc2f4a-e38e-4336-af7d-e6c392c2f817",),
    )
    message_record_attempt(message=message, result=result, retry=True)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.provider_message_id == "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
    assert [row.value for row in message.provider_ids.all()] == [
        "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
    ]
