"""Sign-in and secrets security: lockouts, second factor, sessions, audit trail, safe errors."""
