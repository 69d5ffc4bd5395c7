"""Admin of the collection app (filled in by its owner)."""
