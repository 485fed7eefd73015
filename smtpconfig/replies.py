"""Pure classification of what a server answered: temporary, permanent, quota, credentials.

Functions of plain values, so they are tested exhaustively without a network.
"""

import enum
import re


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # 4xx, disconnect, timeout: retry this message later
    PERMANENT = "permanent"  # 5xx: fail at once with the reply
    SERVER_BUSY = "server_busy"  # 421 or connection refused: back off the whole server
    QUOTA = "quota"  # the provider's volume limit: pause the server until its window allows
    CREDENTIALS = "credentials"  # authentication refused: pause the server, keep its mail


# Replies that mean "you have sent too much", whatever their class says.
_QUOTA_PATTERNS = [
    re.compile(r"\b5\.2\.0\b.*(quota|limit|exceed)", re.IGNORECASE),  # Office 365 554 5.2.0
    re.compile(r"\b5\.4\.5\b"),  # Gmail 550 5.4.5 daily sending quota exceeded
    re.compile(r"\b4\.7\.28\b"),  # Gmail rate limiting
    re.compile(r"sending (quota|limit) exceeded|daily (user )?sending quota", re.IGNORECASE),
]


def classify_reply(code: int | None, text: str = "") -> Outcome:
    """Classify an SMTP reply code and text (``None`` code: no reply at all, e.g. a timeout)."""
    if code is not None and 200 <= code < 300:
        return Outcome.ACCEPTED
    if any(pattern.search(text or "") for pattern in _QUOTA_PATTERNS):
        return Outcome.QUOTA
    if code in (530, 534, 535, 454) and "auth" in (text or "").lower() or code == 535:
        return Outcome.CREDENTIALS
    if code == 421:
        return Outcome.SERVER_BUSY
    if code is None or 400 <= code < 500:
        return Outcome.TEMPORARY
    return Outcome.PERMANENT
