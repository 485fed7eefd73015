"""An aiosmtpd server that only offers AUTH XOAUTH2 and checks each token with the issuer.

It answers a refused token as the real services do: Microsoft 365 with ``535 5.7.3``,
Google with a 334 challenge holding a JSON error, then ``535 5.7.8`` after the client's
empty line.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult

from tests.oauth.token_endpoint import TokenEndpoint
from tests.smtp_sink import SinkHandler, free_port

MICROSOFT_REFUSAL = (
    "535 5.7.3 Authentication unsuccessful [AM0PR02CA0001.eurprd02.prod.outlook.com]"
)
GOOGLE_REFUSAL = (
    "535 5.7.8 Username and Password not accepted. "
    "For more information, go to https://support.google.com/mail/?p=BadCredentials"
)
GOOGLE_ERROR_CHALLENGE = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}


@dataclass
class XOAuth2Handler(SinkHandler):
    issuer: TokenEndpoint | None = None
    style: str = "microsoft"
    # (mailbox, accepted) per AUTH XOAUTH2 attempt
    auth_attempts: list[tuple[str, bool]] = field(default_factory=list)
    sessions_authenticated_as: list[str] = field(default_factory=list)

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        mailbox = fields.get("user", "")
        scheme, _, token = fields.get("auth", "").partition(" ")
        accepted = scheme == "Bearer" and self.issuer.token_accepted(token, mailbox)
        with self.lock:
            self.auth_attempts.append((mailbox, accepted))
        if accepted:
            with self.lock:
                self.sessions_authenticated_as.append(mailbox)
            return AuthResult(success=True, auth_data=mailbox)
        if self.style == "google":
            # The client must answer the error challenge with an empty line.
            await server.challenge_auth(json.dumps(GOOGLE_ERROR_CHALLENGE))
            return AuthResult(success=False, handled=False, message=GOOGLE_REFUSAL)
        return AuthResult(success=False, handled=False, message=MICROSOFT_REFUSAL)


class XOAuth2Peer:
    """A running SMTP server requiring XOAUTH2; ``received`` lists what it accepted."""

    def __init__(self, *, issuer: TokenEndpoint, style: str = "microsoft", tls_context=None):
        """With ``tls_context``, STARTTLS is required before AUTH, as on port 587 of both
        services; without it, AUTH is offered in the clear (loopback only)."""
        self.handler = XOAuth2Handler(issuer=issuer, style=style)
        self.host = "127.0.0.1"
        self.port = free_port()
        tls = {}
        if tls_context is not None:
            tls = {"tls_context": tls_context, "require_starttls": True}
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            ready_timeout=10,
            auth_required=True,
            auth_require_tls=tls_context is not None,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            **tls,
        )

    @property
    def received(self):
        return self.handler.received

    def start(self) -> "XOAuth2Peer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
