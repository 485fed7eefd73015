"""Building blocks every app may use; imports none of them (the bottom of the layering)."""
