"""knowledge library (filled in by later issues)."""
