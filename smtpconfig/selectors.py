"""Reads the routing backend and the outbox admin need."""

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from core.compiled import CompiledQuery, Read, SqlRead, rows_together
from smtpconfig.conf import mailadmin_setting
from smtpconfig.exceptions import ConfigurationError
from smtpconfig.models import (
    DkimKey,
    MailSettings,
    MessageEvent,
    OutgoingMessage,
    Recipient,
    SmtpServer,
)
from smtpconfig.selection import ServerOption
from smtpconfig.validation import FromFilterError, parse_from_filter


def server_option(*, server: SmtpServer) -> ServerOption:
    """The plain values routing decides on, from one server row."""
    try:
        entries = parse_from_filter(server.from_filter)
    except FromFilterError as error:
        # The server form refuses such a filter; one stored some other way must not route
        # mail by guesswork.
        raise ConfigurationError(
            _("The filter of SMTP server “%(server)s” is invalid: %(error)s")
            % {"server": server.name, "error": error}
        ) from error
    addresses = {entry for entry in entries if "@" in entry}
    domains = {entry for entry in entries if "@" not in entry}
    return ServerOption(
        id=server.pk,
        name=server.name,
        sender_email=server.sender_email,
        sender_name=server.sender_name,
        reply_to=server.reply_to,
        filter_addresses=frozenset(addresses),
        filter_domains=frozenset(domains),
        is_default=server.is_default,
        is_active=server.is_active,
    )


def _routing_servers_queryset() -> QuerySet[SmtpServer]:
    return SmtpServer.objects.filter(is_active=True).order_by("name", "pk")


def routing_servers() -> list[SmtpServer]:
    """Every active server, by name (the order routing breaks ties in): one query."""
    return list(_routing_servers_queryset())


@dataclass(frozen=True)
class RoutingConfig:
    """What the portal decides about every message, as read for one call of the backend."""

    mail_settings: MailSettings
    servers: list[SmtpServer]
    options: list[ServerOption]
    dkim_keys: dict[str, DkimKey]

    def copied(self) -> "RoutingConfig":
        """The same values in instances of the caller's own: sending may change a server
        instance (a pause, a refreshed token), which must not leak into the next call."""
        return RoutingConfig(
            mail_settings=copy.copy(self.mail_settings),
            servers=[copy.copy(server) for server in self.servers],
            options=self.options,
            dkim_keys={domain: copy.copy(key) for domain, key in self.dkim_keys.items()},
        )


_SETTINGS_ROW = CompiledQuery(lambda: MailSettings.objects.filter(pk=1))
_ACTIVE_SERVERS = CompiledQuery(_routing_servers_queryset)
_ACTIVE_DKIM_KEYS = CompiledQuery(lambda: DkimKey.objects.filter(is_active=True).order_by("pk"))


def _version_sql(connection) -> str:
    """PostgreSQL: a text that changes with every row written to the tables the
    configuration is read from, however it was written: each row's key and the transaction
    that wrote the version of it one sees (``xmin``, which every ``UPDATE`` renews)."""
    quote = connection.ops.quote_name
    tables = []
    for model in (MailSettings, SmtpServer, DkimKey):
        pk, table = quote(model._meta.pk.column), quote(model._meta.db_table)
        # Names quoted by the database's own rules; no value goes into the text.
        aggregate = f"string_agg({pk}::text || ':' || xmin::text, ',' ORDER BY {pk})"
        tables.append(f"(SELECT {aggregate} FROM {table})")  # noqa: S608
    return f"concat({", '/', ".join(tables)})"


_VERSION = SqlRead(lambda connection: f"SELECT {_version_sql(connection)}")  # noqa: S608
_VERSION_CHANGED = SqlRead(
    lambda connection: f"SELECT 1 WHERE {_version_sql(connection)} IS DISTINCT FROM %s",  # noqa: S608
    params=1,
)


@dataclass(frozen=True)
class _Read:
    rows: tuple
    config: RoutingConfig
    # PostgreSQL's version of the rows (``_version_sql``), read before them; else None.
    version: str | None


# The rows last read and the configuration built from them, shared by the process's threads.
_last_config: dict[str, _Read] = {}


def _routing_rows(also: Sequence[Read]) -> tuple[tuple, str | None, list[list[tuple]]]:
    # On PostgreSQL the version comes first: a row written after it was read changes it, so
    # the rows read after it are never newer than the version kept with them.
    postgresql = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
    first = [(_VERSION, None)] if postgresql else []
    results = rows_together(
        [*first, (_SETTINGS_ROW, None), (_ACTIVE_SERVERS, None), (_ACTIVE_DKIM_KEYS, None), *also]
    )
    version = results.pop(0)[0][0] if postgresql else None
    settings_rows, server_rows, key_rows, *also_rows = results
    rows = (
        tuple(settings_rows),
        tuple(server_rows),
        tuple(key_rows),
        # The same ciphertext may decrypt differently (or not at all) under other keys.
        tuple(mailadmin_setting("ENCRYPTION_KEYS")),
    )
    return rows, version, also_rows


def routing_read(*, also: Sequence[Read] = ()) -> tuple[RoutingConfig, list[list[tuple]]]:
    """The mail settings, the active servers (with their routing options) and the active
    DKIM keys, as they are in the database now: three small reads of whole rows; with the
    rows of the reads ``also`` asked for (the blacklist's, say), all in one round trip on
    PostgreSQL (``core.compiled.rows_together``).

    Every call reads the rows themselves, so any change, however it was written (the
    portal, a queryset ``update()``, a migration, another process or host), applies to the
    very next message. Only turning unchanged rows into instances again (decrypting keys,
    parsing filters) is skipped. Each call gets instances of its own.
    """
    rows, version, also_rows = _routing_rows(also)
    if not rows[0]:
        # A new database: the settings row is made once, with its defaults.
        MailSettings.load()
        rows, version, also_rows = _routing_rows(also)
    last = _last_config.get("last")
    if last is not None and last.rows == rows:
        _last_config["last"] = _Read(rows=rows, config=last.config, version=version)
        return last.config.copied(), also_rows
    settings_rows, server_rows, key_rows, _keys = rows
    (mail_settings,) = _SETTINGS_ROW.instances(list(settings_rows))
    servers = _ACTIVE_SERVERS.instances(list(server_rows))
    config = RoutingConfig(
        mail_settings=mail_settings,
        servers=servers,
        options=[server_option(server=server) for server in servers],
        dkim_keys={key.domain: key for key in _ACTIVE_DKIM_KEYS.instances(list(key_rows))},
    )
    _last_config["last"] = _Read(rows=rows, config=config, version=version)
    return config.copied(), also_rows


def routing_kept() -> tuple[RoutingConfig, Read] | None:
    """PostgreSQL: the configuration the last ``routing_read`` of this process read, without
    reading it again, and the read that finds a row once it is no longer what the database
    holds (any row written to the settings, the servers or the DKIM keys since): for a
    statement that writes only where that read finds nothing
    (``CompiledInsert.insert_with_then``'s ``unless``), so that a change, however it was
    written, still applies to the very next message. ``None`` on other databases, before a
    first read, or once the encryption keys are others."""
    last = _last_config.get("last")
    if last is None or last.version is None:
        return None
    if last.rows[3] != tuple(mailadmin_setting("ENCRYPTION_KEYS")):
        return None
    return last.config.copied(), (_VERSION_CHANGED, [last.version])


def routing_config() -> RoutingConfig:
    """The portal's configuration as it is now (``routing_read``)."""
    config, _rows = routing_read()
    return config


def message_recipients(*, message: OutgoingMessage) -> QuerySet[Recipient]:
    return message.recipients.select_related("blacklist_entry").order_by("pk")


def message_events(*, message: OutgoingMessage) -> QuerySet[MessageEvent]:
    return message.events.select_related("user").order_by("created_at", "pk")
