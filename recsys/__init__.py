"""recsys library (filled in by later issues)."""
