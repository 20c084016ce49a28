"""User feedback per request: which system served each request id, and the ratings filed against it."""
