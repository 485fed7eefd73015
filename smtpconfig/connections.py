"""The connection for a server's transport: SMTP, or an e-mail service through anymail.

Both have one interface (``open()``, ``send(*, envelope_from, recipients, raw)``,
``close()``, ``is_open``), so the queue, direct delivery and the diagnostics never ask which.
"""

from smtpconfig.esp import EspConnection
from smtpconfig.models import SmtpServer
from smtpconfig.transport import SmtpConnection


def server_connection(server: SmtpServer) -> SmtpConnection | EspConnection:
    if server.transport == SmtpServer.Transport.SMTP:
        return SmtpConnection(server)
    return EspConnection(server)
