"""Admin of the alignment app (filled in by its owner)."""
