"""vision library (filled in by later issues)."""
