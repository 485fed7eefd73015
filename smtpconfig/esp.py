"""Delivery through an e-mail service (Postmark, Mailgun, Amazon SES...) with anymail.

``EspConnection`` has the interface of ``transport.SmtpConnection``: the queue and direct
delivery use either without knowing which. It sends the stored bytes through anymail's own
backend for the service, built per server from the server's decrypted credentials, and
classifies what the service answered into the same outcomes as SMTP replies.
"""

import contextlib
import email
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses

from anymail.backends.amazon_ses import EmailBackend as AmazonSesBackend
from anymail.backends.base import AnymailBaseBackend
from anymail.backends.brevo import EmailBackend as BrevoBackend
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.backends.mailjet import EmailBackend as MailjetBackend
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.resend import EmailBackend as ResendBackend
from anymail.backends.sparkpost import EmailBackend as SparkPostBackend
from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailSerializationError,
    AnymailUnsupportedFeature,
)
from botocore.exceptions import BotoCoreError
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.utils.translation import gettext_lazy as _
from requests import RequestException

from smtpconfig.exceptions import InvalidMessage
from smtpconfig.models import SmtpServer
from smtpconfig.replies import Outcome, classify_reply
from smtpconfig.transport import (
    ConnectionFailed,
    RecipientResult,
    SendResult,
    before_data_wait,
)


@dataclass(frozen=True)
class EspService:
    backend: type[AnymailBaseBackend]
    # credentials key -> anymail backend option
    required: dict[str, str]
    optional: dict[str, str]


# What each service needs, as keys of the server's credentials JSON.
ESP_SERVICES: dict[str, EspService] = {
    SmtpServer.Transport.POSTMARK: EspService(
        PostmarkBackend,
        {"server_token": "server_token"},
        {"message_stream": "message_stream", "api_url": "api_url"},
    ),
    SmtpServer.Transport.MAILGUN: EspService(
        MailgunBackend,
        {"api_key": "api_key"},
        # api_url: https://api.eu.mailgun.net/v3/ for domains in the EU region.
        {"sender_domain": "sender_domain", "api_url": "api_url"},
    ),
    SmtpServer.Transport.AMAZON_SES: EspService(
        AmazonSesBackend,
        {
            "access_key_id": "aws_access_key_id",
            "secret_access_key": "aws_secret_access_key",
            "region": "region_name",
        },
        {"configuration_set_name": "configuration_set_name"},
    ),
    SmtpServer.Transport.BREVO: EspService(BrevoBackend, {"api_key": "api_key"}, {}),
    SmtpServer.Transport.MAILJET: EspService(
        MailjetBackend, {"api_key": "api_key", "secret_key": "secret_key"}, {}
    ),
    SmtpServer.Transport.RESEND: EspService(ResendBackend, {"api_key": "api_key"}, {}),
    SmtpServer.Transport.SPARKPOST: EspService(
        SparkPostBackend,
        {"api_key": "api_key"},
        # api_url: https://api.eu.sparkpost.com/api/v1 for SparkPost EU accounts.
        {"subaccount": "subaccount", "api_url": "api_url"},
    ),
}

# Headers the service writes itself from the API call, or that must not be passed on.
_STRUCTURAL_HEADERS = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    # The service signs the message it builds; our signature would not survive the rebuild.
    "dkim-signature",
    "received",
    "return-path",
}

# anymail's per-recipient statuses.
_RECIPIENT_OUTCOMES = {
    "sent": Outcome.ACCEPTED,
    "queued": Outcome.ACCEPTED,
    "scheduled": Outcome.ACCEPTED,
    "unknown": Outcome.ACCEPTED,  # the service took the message without a per-recipient answer
    "rejected": Outcome.PERMANENT,
    "invalid": Outcome.PERMANENT,
    "failed": Outcome.TEMPORARY,
}

# Amazon SES error codes whose HTTP status (400) does not tell what they mean.
_SES_ERROR_OUTCOMES = {
    "Throttling": Outcome.QUOTA,
    "ThrottlingException": Outcome.QUOTA,
    "TooManyRequestsException": Outcome.QUOTA,
    "LimitExceededException": Outcome.QUOTA,
    "SendingPausedException": Outcome.CREDENTIALS,
    "AccountSuspendedException": Outcome.CREDENTIALS,
    "UnrecognizedClientException": Outcome.CREDENTIALS,
    "InvalidClientTokenId": Outcome.CREDENTIALS,
    "SignatureDoesNotMatch": Outcome.CREDENTIALS,
    "AccessDeniedException": Outcome.CREDENTIALS,
    "AccessDenied": Outcome.CREDENTIALS,
}


# What anymail raises for a message no service call can send as it is.
_MESSAGE_ERRORS = (AnymailInvalidAddress, AnymailUnsupportedFeature, AnymailSerializationError)


@dataclass(frozen=True)
class EspSendResult(SendResult):
    """A ``SendResult`` with the ids the service gave the message (to match its webhooks):
    one, or one per recipient for the services that work that way."""

    provider_message_ids: tuple[str, ...] = ()


def classify_esp_error(*, status_code: int | None, error_code: str = "", text: str = "") -> Outcome:
    """Classify a service's API error like an SMTP reply.

    No status (a network error, a timeout) and 5xx: temporary. 429 or a quota message: quota.
    401/403: credentials. Other 4xx: permanent (the same request will never pass).
    """
    if error_code in _SES_ERROR_OUTCOMES:
        return _SES_ERROR_OUTCOMES[error_code]
    if status_code == 429 or classify_reply(None, text) == Outcome.QUOTA:
        return Outcome.QUOTA
    if status_code in (401, 403):
        return Outcome.CREDENTIALS
    if status_code is None or status_code >= 500:
        return Outcome.TEMPORARY
    if 400 <= status_code < 500:
        return Outcome.PERMANENT
    return Outcome.TEMPORARY


def esp_credentials_validate(*, transport: str, credentials: dict) -> dict:
    """Check ``credentials`` for ``transport``; return them without unknown keys.

    Raises ``ValidationError`` naming the missing or unknown keys (for the server form).
    """
    service = ESP_SERVICES.get(transport)
    if service is None:
        raise ValidationError(
            _("“%(transport)s” is not an e-mail service."),
            code="invalid_transport",
            params={"transport": transport},
        )
    if not isinstance(credentials, dict):
        raise ValidationError(_("The credentials must be a JSON object."), code="invalid_json")
    missing = [key for key in service.required if not str(credentials.get(key) or "").strip()]
    if missing:
        raise ValidationError(
            _("Missing credentials for %(service)s: %(keys)s."),
            code="missing_credentials",
            params={"service": transport, "keys": ", ".join(missing)},
        )
    unknown = sorted(set(credentials) - set(service.required) - set(service.optional))
    if unknown:
        raise ValidationError(
            _("Unknown credentials for %(service)s: %(keys)s. Known: %(known)s."),
            code="unknown_credentials",
            params={
                "service": transport,
                "keys": ", ".join(unknown),
                "known": ", ".join([*service.required, *service.optional]),
            },
        )
    return {key: str(value).strip() for key, value in credentials.items() if value}


def esp_backend_for(server: SmtpServer) -> AnymailBaseBackend:
    """anymail's backend for ``server``'s service, configured from its credentials only.

    Raises ``ValidationError`` when the stored credentials are not usable.
    """
    try:
        stored = json.loads(str(server.credentials or "") or "{}")
    except ValueError:
        raise ValidationError(
            _("The stored credentials are not valid JSON."), code="invalid_json"
        ) from None
    credentials = esp_credentials_validate(transport=server.transport, credentials=stored)
    service = ESP_SERVICES[server.transport]
    options = {
        option: credentials[key]
        for key, option in {**service.required, **service.optional}.items()
        if key in credentials
    }
    alias = f"mailadmin-server-{server.pk}"
    if server.transport == SmtpServer.Transport.AMAZON_SES:
        client_options = {
            option: options.pop(option)
            for option in ("aws_access_key_id", "aws_secret_access_key", "region_name")
        }
        client_options["config"] = {
            "connect_timeout": server.timeout,
            "read_timeout": server.timeout,
        }
        return service.backend(alias=alias, client_params=client_options, **options)
    return service.backend(alias=alias, timeout=server.timeout, **options)


def _addresses(parsed, name: str) -> list[str]:
    return [address for _name, address in getaddresses(parsed.get_all(name, [])) if address]


def email_message_from_raw(*, raw: bytes, recipients: list[str]) -> EmailMultiAlternatives:
    """A Django message equivalent to the stored bytes, addressed to ``recipients`` only.

    ``recipients`` (the envelope) decides who receives it: those in the To or Cc header stay
    there, the others (Bcc, the test address in test mode) become Bcc.
    """
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    wanted = {address.lower(): address for address in recipients}
    to = [a for a in _addresses(parsed, "To") if wanted.pop(a.lower(), None) is not None]
    cc = [a for a in _addresses(parsed, "Cc") if wanted.pop(a.lower(), None) is not None]
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    headers = {}
    for name, value in parsed.items():
        if name.lower() not in _STRUCTURAL_HEADERS and name not in headers:
            headers[name] = str(value)
    message = EmailMultiAlternatives(
        subject=str(parsed.get("Subject", "")),
        body=text_part.get_content() if text_part is not None else "",
        from_email=str(parsed.get("From", "")),
        to=to,
        cc=cc,
        bcc=list(wanted.values()),
        reply_to=[str(value) for value in parsed.get_all("Reply-To", [])],
        headers=headers,
    )
    if html_part is not None:
        if text_part is None:
            message.body = html_part.get_content()
            message.content_subtype = "html"
        else:
            message.attach_alternative(html_part.get_content(), "text/html")
    for part in parsed.walk():
        if part.is_multipart() or part is text_part or part is html_part or part is parsed:
            continue
        if part.get_content_disposition() == "inline" or (
            part.get_content_disposition() is None and "Content-ID" in part
        ):
            # anymail sends a MIME part with a Content-ID as an inline (cid:) attachment.
            message.attach(part)
        else:
            message.attach(part.get_filename(), part.get_content(), part.get_content_type())
    return message


def _provider_ids(message_id) -> tuple[str, ...]:
    """anymail's ``message_id``: ``None``, one id, or the set of the recipients' ids."""
    if message_id is None:
        return ()
    if isinstance(message_id, set):
        return tuple(sorted(str(one) for one in message_id if one))
    return (str(message_id),)


def _http_status(response) -> int | None:
    """The HTTP status of a service's answer: a requests response or boto3's dict."""
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return getattr(response, "status_code", None)


def send_result_from_status(*, status, recipients: list[str]) -> EspSendResult:
    """Map anymail's ``AnymailStatus`` to per-recipient results and the message's outcome."""
    by_address = {address.lower(): result for address, result in status.recipients.items()}
    results = []
    for address in recipients:
        recipient_status = by_address.get(address.lower())
        state = recipient_status.status if recipient_status is not None else "unknown"
        outcome = _RECIPIENT_OUTCOMES.get(state, Outcome.TEMPORARY)
        results.append(
            RecipientResult(address, outcome, None, "" if outcome == Outcome.ACCEPTED else state)
        )
    accepted = [result for result in results if result.outcome == Outcome.ACCEPTED]
    if accepted:
        outcome, reply = Outcome.ACCEPTED, ""
    else:
        worst = min(results, key=lambda result: result.outcome != Outcome.TEMPORARY)
        outcome, reply = worst.outcome, worst.reply
    return EspSendResult(
        outcome,
        _http_status(status.esp_response),
        reply,
        results,
        provider_message_ids=_provider_ids(status.message_id),
    )


def _api_error_result(error: AnymailAPIError) -> EspSendResult:
    response = getattr(error, "response", None)
    status_code = error.status_code or _http_status(response)
    error_code = ""
    if isinstance(response, dict):  # boto3's ClientError response
        error_code = response.get("Error", {}).get("Code", "")
    text = str(error)
    return EspSendResult(
        classify_esp_error(status_code=status_code, error_code=error_code, text=text),
        status_code,
        text,
    )


class EspConnection:
    """An open-once, send-many connection to one e-mail service's API."""

    def __init__(self, server: SmtpServer, *, backend: AnymailBaseBackend | None = None):
        self.server = server
        self._backend = backend
        self._opened = False

    @property
    def backend(self) -> AnymailBaseBackend:
        if self._backend is None:
            self._backend = esp_backend_for(self.server)
        return self._backend

    def open(self) -> None:
        """Build the service's client; unusable credentials are a ``CREDENTIALS`` failure."""
        try:
            self.backend.open()
        except ValidationError as error:
            raise ConnectionFailed(" ".join(error.messages), outcome=Outcome.CREDENTIALS) from error
        except (AnymailConfigurationError, BotoCoreError, ValueError) as error:
            raise ConnectionFailed(
                str(error) or type(error).__name__, outcome=Outcome.CREDENTIALS
            ) from error
        self._opened = True

    def send(
        self,
        *,
        envelope_from: str,
        recipients: list[str],
        raw: bytes,
        before_data: Callable[[], None] | None = None,
    ) -> SendResult:
        """Send ``raw`` to ``recipients``; never raises for what the service answers.

        Raises ``InvalidMessage`` (a ``ValueError``) only for what is wrong with the message
        itself, as ``SmtpConnection.send`` does. The service builds its own envelope (its
        bounce address), so ``envelope_from`` is not passed on. One request carries the
        whole message: ``before_data`` is called before it is made, and what it raises
        comes out as ``MessageWithheld`` with nothing sent.
        """
        message = email_message_from_raw(raw=raw, recipients=recipients)
        before_data_wait(before_data)
        try:
            self.backend.send_messages([message])
        except AnymailRecipientsRefused:
            return send_result_from_status(status=message.anymail_status, recipients=recipients)
        except AnymailAPIError as error:
            result = _api_error_result(error)
            if result.code is None:
                # No answer at all: the service could not be reached. Like a dropped SMTP
                # session, the connection is closed, so the batch stops here and the rest
                # waits for the next pass instead of each trying in vain.
                self.close()
            return result
        except AnymailConfigurationError as error:
            return EspSendResult(Outcome.CREDENTIALS, None, str(error))
        except (
            AnymailInvalidAddress,
            AnymailUnsupportedFeature,
            AnymailSerializationError,
        ) as error:
            # The message itself cannot go through this service, now or later; like
            # SmtpConnection, say so by raising, and the caller fails this message only.
            raise InvalidMessage(str(error), value=str(error)) from error
        return send_result_from_status(status=message.anymail_status, recipients=recipients)

    def discard(self) -> None:
        """Drop the client after an error; the next ``open()`` builds a fresh one."""
        self.close()

    @property
    def is_open(self) -> bool:
        return self._opened

    def close(self) -> None:
        """Close the client; never raises (the results are already recorded)."""
        if not self._opened:
            return
        self._opened = False
        with contextlib.suppress(RequestException, BotoCoreError, OSError):
            self.backend.close()
