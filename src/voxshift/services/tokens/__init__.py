"""Admin API bearer tokens: issued once, stored as hashes, checked per request with a short cache."""
