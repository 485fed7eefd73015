"""A local OAuth2 token endpoint speaking Microsoft Entra ID's and Google's protocols, over TLS.

msal insists on an https authority, so the endpoint serves HTTPS with a certificate made for
127.0.0.1 in the test; the code under test trusts it through ``MAILADMIN['OAUTH_CA_BUNDLE']``.

Microsoft: ``GET /<tenant>/v2.0/.well-known/openid-configuration`` (the tenant discovery msal
does first) and ``POST /<tenant>/oauth2/v2.0/token`` (client credentials grant).
Google: ``POST /google/token`` with the JWT bearer grant of a service account (the signed
assertion is verified against the account's public key, with its ``sub`` and ``scope``) or
the refresh token grant.

It issues tokens, expires and revokes them, and counts requests; ``token_accepted`` is what
the SMTP peer asks to check a token and the mailbox it is used for, like the real services.
"""

import json
import secrets
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class MicrosoftApp:
    tenant_id: str
    client_id: str
    client_secret: str
    mailboxes: set[str]
    refusal: tuple[int, str, str] | None = None  # (status, error, description) once revoked


@dataclass
class GoogleServiceAccount:
    client_email: str
    public_key_pem: bytes
    delegated_users: set[str]


@dataclass
class GoogleRefreshToken:
    client_id: str
    client_secret: str
    user: str
    revoked: bool = False


@dataclass
class Issued:
    principal: str  # app or account the token was issued to
    mailboxes: set[str]
    expires_at: float
    revoked: bool = False


@dataclass
class TokenEndpoint:
    tls_context: ssl.SSLContext
    host: str = "127.0.0.1"
    lifetime: int = 3599
    microsoft_apps: dict[tuple[str, str], MicrosoftApp] = field(default_factory=dict)
    service_accounts: dict[str, GoogleServiceAccount] = field(default_factory=dict)
    refresh_tokens: dict[str, GoogleRefreshToken] = field(default_factory=dict)
    issued: dict[str, Issued] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)
    # Raw request bodies and headers, to prove what went over the wire.
    wire: list[bytes] = field(default_factory=list)
    # (status, JSON body) answered to the next token requests instead of a token.
    outage: tuple[int, dict] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "TokenEndpoint":
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_GET(self):
                endpoint._handle(self, "GET")

            def do_POST(self):
                endpoint._handle(self, "POST")

        self.httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = self.tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def google_token_uri(self) -> str:
        return f"{self.base_url}/google/token"

    # Registration, as an administrator does in the provider's console.

    def register_microsoft_app(self, *, tenant_id, client_id, client_secret, mailboxes):
        self.microsoft_apps[(tenant_id, client_id)] = MicrosoftApp(
            tenant_id, client_id, client_secret, {m.lower() for m in mailboxes}
        )

    def register_service_account(self, *, client_email, public_key_pem, delegated_users):
        self.service_accounts[client_email] = GoogleServiceAccount(
            client_email, public_key_pem, {u.lower() for u in delegated_users}
        )

    def register_refresh_token(self, *, refresh_token, client_id, client_secret, user):
        self.refresh_tokens[refresh_token] = GoogleRefreshToken(
            client_id, client_secret, user.lower()
        )

    # What the tests do to the provider's side.

    def revoke_microsoft_app(self, *, tenant_id, client_id, status, error, description):
        """The app's secret is deleted or the app disabled: its tokens and new requests fail."""
        with self.lock:
            self.microsoft_apps[(tenant_id, client_id)].refusal = (status, error, description)
            self._revoke_tokens_of(f"microsoft:{tenant_id}:{client_id}")

    def revoke_refresh_token(self, refresh_token):
        with self.lock:
            grant = self.refresh_tokens[refresh_token]
            grant.revoked = True
            self._revoke_tokens_of(f"google-user:{grant.client_id}:{grant.user}")

    def revoke_access_tokens(self) -> None:
        """Tokens already issued stop working; new token requests still succeed."""
        with self.lock:
            for issued in self.issued.values():
                issued.revoked = True

    def expire_access_tokens(self) -> None:
        with self.lock:
            for issued in self.issued.values():
                issued.expires_at = min(issued.expires_at, time.time() - 1)

    def _revoke_tokens_of(self, principal: str) -> None:
        for issued in self.issued.values():
            if issued.principal == principal:
                issued.revoked = True

    def token_accepted(self, token: str, mailbox: str) -> bool:
        """Whether an SMTP service would accept ``token`` for ``mailbox`` now."""
        with self.lock:
            issued = self.issued.get(token)
            return (
                issued is not None
                and not issued.revoked
                and issued.expires_at > time.time()
                and mailbox.lower() in issued.mailboxes
            )

    # The protocol.

    def _issue(self, principal: str, mailboxes: set[str]) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.issued[token] = Issued(principal, mailboxes, time.time() + self.lifetime)
        return token

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        with self.lock:
            self.wire.append(str(request.headers).encode() + body)
        path = urllib.parse.urlsplit(request.path).path
        parts = [part for part in path.split("/") if part]
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}

        if method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            status, answer = self._microsoft_discovery(parts[0])
        elif method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            status, answer = self._token_request(
                "microsoft_token", self._microsoft_token, parts[0], form
            )
        elif method == "POST" and parts == ["google", "token"]:
            status, answer = self._token_request("google_token", self._google_token, form)
        else:
            status, answer = 404, {"error": "not_found"}
        payload = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _token_request(self, kind, answer, *args):
        with self.lock:
            self.requests[kind] += 1
            outage = self.outage
        if outage:
            return outage
        return answer(*args)

    def _microsoft_discovery(self, tenant_id: str):
        with self.lock:
            self.requests["microsoft_discovery"] += 1
        if not any(tenant == tenant_id for tenant, _ in self.microsoft_apps):
            return 400, {
                "error": "invalid_tenant",
                "error_description": (
                    f"AADSTS90002: Tenant '{tenant_id}' not found. Check to make sure you have "
                    "the correct tenant ID and are signing into the correct cloud."
                ),
                "error_codes": [90002],
            }
        base = f"{self.base_url}/{tenant_id}"
        return 200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }

    def _microsoft_token(self, tenant_id: str, form: dict):
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"}
        app = self.microsoft_apps.get((tenant_id, form.get("client_id", "")))
        if app is None:
            return 400, {
                "error": "unauthorized_client",
                "error_description": (
                    f"AADSTS700016: Application with identifier '{form.get('client_id')}' "
                    f"was not found in the directory '{tenant_id}'."
                ),
            }
        if app.refusal:
            status, error, description = app.refusal
            return status, {"error": error, "error_description": description}
        if form.get("client_secret") != app.client_secret:
            return 401, {
                "error": "invalid_client",
                "error_description": (
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                    "in the request is the client secret value, not the client secret ID, for a "
                    f"secret added to app '{app.client_id}'."
                ),
            }
        if MICROSOFT_SCOPE not in form.get("scope", "").split():
            return 400, {"error": "invalid_scope", "error_description": "AADSTS1002012"}
        token = self._issue(f"microsoft:{tenant_id}:{app.client_id}", set(app.mailboxes))
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": token,
        }

    def _google_token(self, form: dict):
        if form.get("grant_type") == JWT_BEARER:
            return self._google_service_account_token(form.get("assertion", ""))
        if form.get("grant_type") == "refresh_token":
            return self._google_refresh_token(form)
        return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}

    def _google_service_account_token(self, assertion: str):
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            account = self.service_accounts[issuer]
            claims = jwt.decode(
                assertion, account.public_key_pem, algorithms=["RS256"], audience=GOOGLE_AUDIENCE
            )
        except (jwt.InvalidTokenError, KeyError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        subject = claims.get("sub", "").lower()
        if GOOGLE_SCOPE not in claims.get("scope", "").split() or subject not in (
            account.delegated_users
        ):
            return 401, {
                "error": "unauthorized_client",
                "error_description": (
                    "Client is unauthorized to retrieve access tokens using this method, or "
                    "client not authorized for any of the scopes requested."
                ),
            }
        token = self._issue(f"google-sa:{account.client_email}:{subject}", {subject})
        return 200, {
            "access_token": token,
            "expires_in": self.lifetime,
            "token_type": "Bearer",
        }

    def _google_refresh_token(self, form: dict):
        grant = self.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.revoked:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        if form.get("client_id") != grant.client_id or form.get("client_secret") != (
            grant.client_secret
        ):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        token = self._issue(f"google-user:{grant.client_id}:{grant.user}", {grant.user})
        return 200, {
            "access_token": token,
            "expires_in": self.lifetime,
            "scope": GOOGLE_SCOPE,
            "token_type": "Bearer",
        }
