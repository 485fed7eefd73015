"""Admin of the portal's own models."""
