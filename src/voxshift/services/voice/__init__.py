"""Voice: the voice_v2 facade (transcribe, synthesize), its caches and the results it returns."""
