"""Admin of the outbox (messages, recipients) and of the mail settings."""
