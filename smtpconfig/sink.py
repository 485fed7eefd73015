"""A local catching SMTP server (aiosmtpd): stores each message as an .eml file."""

import email
import email.policy
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiosmtpd.controller import Controller


class CatchingHandler:
    """Accepts every message, writes it to ``directory`` and reports one line per message."""

    def __init__(self, directory: Path, report: Callable[[str], None]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.report = report
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = self.directory / f"{stamp}-{self.count:05d}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.report(
            f"{envelope.mail_from} -> {', '.join(envelope.rcpt_tos)}: "
            f"{parsed.get('Subject', '')} ({path.name})"
        )
        return "250 Message accepted for delivery"


def sink_controller(*, handler, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    # SMTPUTF8 on, and no size limit: a catching server must not refuse what a real one takes.
    return Controller(handler, hostname=host, port=port, enable_SMTPUTF8=True, data_size_limit=None)
