"""Per-agent voice settings: the read-through settings service."""
