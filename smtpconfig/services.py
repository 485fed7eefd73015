"""The verbs on SMTP servers: create, update, set default, delete, reset the send limit.

The admin's form validates what was typed; these functions keep the invariants that span
rows (exactly one default server while any server exists) and own every write.
"""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import AuditAction, audit_record
from smtpconfig.crypto import Secret
from smtpconfig.delivery import drain_soon, outbox_wake_limit_deferred, server_resume
from smtpconfig.exceptions import ServerChangeRefused
from smtpconfig.models import SmtpServer
from smtpconfig.oauth import oauth_token_discard
from smtpconfig.validation import FromFilterError, parse_from_filter


def from_filter_conflicts(*, entries: Iterable[str], server_id: int | None) -> dict[str, str]:
    """Which of ``entries`` another server's filter already holds: ``{entry: server name}``.

    ``server_id`` is the server being edited (its own entries are no conflict).
    """
    wanted = set(entries)
    if not wanted:
        return {}
    claimed: dict[str, str] = {}
    others = SmtpServer.objects.exclude(from_filter="").order_by("name")
    if server_id is not None:
        others = others.exclude(pk=server_id)
    for name, text in others.values_list("name", "from_filter"):
        try:
            their_entries = parse_from_filter(text)
        except FromFilterError:
            # Stored some other way than through the form; routing reports it on its own.
            continue
        for entry in wanted.intersection(their_entries):
            claimed.setdefault(entry, name)
    return claimed


def _password_apply(*, server: SmtpServer, password: str | None, clear_password: bool) -> None:
    if clear_password:
        server.password = ""
    elif password:
        # Wrapped at once, so a traceback or a log of the object shows no plaintext.
        server.password = Secret(password)


def _credentials_apply(*, server: SmtpServer, credentials: str | None) -> None:
    if credentials is not None:
        server.credentials = Secret(credentials)


def server_create(
    *,
    server: SmtpServer,
    password: str | None = None,
    credentials: str | None = None,
    acting_user=None,
) -> SmtpServer:
    """Save a new server built by the form; the first server becomes the default one.

    ``credentials`` is the JSON document of an e-mail service or an OAuth2 sign-in.
    """
    _password_apply(server=server, password=password, clear_password=False)
    _credentials_apply(server=server, credentials=credentials)
    with transaction.atomic():
        has_default = SmtpServer.objects.select_for_update().filter(is_default=True).exists()
        # With no default, mail from any sender outside the filters would have no way out.
        server.is_default = not has_default and server.is_active
        server.save()
    return server


def server_update(
    *,
    server: SmtpServer,
    password: str | None = None,
    clear_password: bool = False,
    credentials: str | None = None,
    acting_user=None,
) -> SmtpServer:
    """Save the changes the form made to ``server``; a blank ``password`` keeps the stored one.

    ``credentials`` replaces the stored credentials document; ``None`` keeps it. A change of
    the sign-in method, its credentials or the mailbox drops the cached OAuth2 token: it was
    issued for what was there before.
    """
    if server.is_default and not server.is_active:
        raise ServerChangeRefused(
            _(
                "“%(server)s” is the default server and cannot be deactivated. Make another "
                "server the default first."
            )
            % {"server": server.name},
            server_name=server.name,
        )
    stored = (
        SmtpServer.objects.filter(pk=server.pk)
        .values("username", "auth_method", "credentials")
        .first()
        or {}
    )
    _credentials_apply(server=server, credentials=credentials)
    changed = [name for name in stored if stored[name] != getattr(server, name)]
    if password or clear_password:
        changed.append("password")
    _password_apply(server=server, password=password, clear_password=clear_password)
    with transaction.atomic():
        server.save()
        if set(changed) & {"username", "auth_method", "credentials"}:
            oauth_token_discard(server=server)
        if changed and server.paused_until is not None:
            # New credentials deserve a try at once, not when a "credentials rejected"
            # pause ends; a server still refusing is paused again by the next attempt.
            server_resume(server=server)
            drain_soon()
        if changed:
            # The trail masks the secret values; it keeps which of them changed.
            audit_record(
                action=AuditAction.SERVER_CREDENTIALS_CHANGED,
                obj=server,
                before={
                    "username": stored.get("username"),
                    "auth_method": stored.get("auth_method"),
                },
                after={
                    "changed": changed,
                    "username": server.username,
                    "auth_method": server.auth_method,
                },
                user=acting_user,
            )
    return server


def server_set_default(*, server: SmtpServer, acting_user=None) -> SmtpServer:
    """Make ``server`` the one default server (the star moves to it)."""
    with transaction.atomic():
        current = list(SmtpServer.objects.select_for_update().filter(is_default=True))
        server.refresh_from_db()
        if not server.is_active:
            raise ServerChangeRefused(
                _("“%(server)s” is inactive. Activate it before making it the default server.")
                % {"server": server.name},
                server_name=server.name,
            )
        # Clear the old star first: the database allows only one at any moment.
        for previous in current:
            if previous.pk != server.pk:
                previous.is_default = False
                previous.save(update_fields=["is_default", "updated_at"])
        if not server.is_default:
            server.is_default = True
            server.save(update_fields=["is_default", "updated_at"])
            audit_record(
                action=AuditAction.DEFAULT_SERVER_CHANGED,
                obj=server,
                before={"default_server": ", ".join(previous.name for previous in current)},
                after={"default_server": server.name},
                user=acting_user,
            )
    return server


def _deletion_refusal(*, servers: list[SmtpServer]) -> ServerChangeRefused | None:
    """Why deleting ``servers`` together is refused, or ``None``.

    Refused when the default server would go while others remain, and for a server the
    outbox has messages of (their history names it).
    """
    used = (
        SmtpServer.objects.filter(pk__in=[server.pk for server in servers], messages__isnull=False)
        .order_by("name")
        .first()
    )
    if used is not None:
        return ServerChangeRefused(
            _(
                "“%(server)s” has messages in the outbox, whose history names it, and cannot be "
                "deleted. Deactivate it instead."
            )
            % {"server": used.name},
            server_name=used.name,
        )
    default = next((server for server in servers if server.is_default), None)
    if default is None:
        return None
    remaining = SmtpServer.objects.exclude(pk__in=[server.pk for server in servers])
    if not remaining.exists():
        return None
    return ServerChangeRefused(
        _(
            "“%(server)s” is the default server and other servers remain. Make another "
            "server the default first (select it and choose “Set as default”), then "
            "delete this one."
        )
        % {"server": default.name},
        server_name=default.name,
    )


def servers_deletion_refusal(*, servers: Iterable[SmtpServer]) -> ServerChangeRefused | None:
    """Why ``servers`` may not be deleted together, or ``None`` if they may."""
    return _deletion_refusal(servers=list(servers))


def servers_delete(*, servers: Iterable[SmtpServer], acting_user=None) -> int:
    """Delete ``servers`` together; ``ServerChangeRefused`` as ``servers_deletion_refusal``."""
    with transaction.atomic():
        locked = list(
            SmtpServer.objects.select_for_update().filter(pk__in=[server.pk for server in servers])
        )
        refusal = _deletion_refusal(servers=locked)
        if refusal is not None:
            raise refusal
        for server in locked:
            server.delete()
    return len(locked)


def server_delete(*, server: SmtpServer, acting_user=None) -> None:
    """Delete one server; refused for the default server while other servers exist."""
    servers_delete(servers=[server], acting_user=acting_user)


def server_reset_limit(*, server: SmtpServer, acting_user=None) -> SmtpServer:
    """Start the server's send-limit window afresh: recipients sent before now stop counting."""
    previous = server.limit_reset_at
    server.limit_reset_at = timezone.now()
    server.limit_reset_by = acting_user
    with transaction.atomic():
        server.save(update_fields=["limit_reset_at", "limit_reset_by", "updated_at"])
        outbox_wake_limit_deferred(server=server, now=server.limit_reset_at)
        audit_record(
            action=AuditAction.LIMIT_RESET,
            obj=server,
            before={"limit_reset_at": previous},
            after={"limit_reset_at": server.limit_reset_at},
            user=acting_user,
        )
    return server
