"""Admin of the blacklist for managers."""
