"""Values that are never written down: their ``repr`` hides them and the audit trail masks them.

It lives here, at the bottom, so the trail can recognise a secret whichever app hands it one.
"""


class Secret(str):
    """A decrypted secret whose ``repr`` never shows the value (logs, tracebacks, admin)."""

    def __repr__(self):
        return "Secret('********')" if self else "Secret('')"
