"""Validation models: the one place pydantic schemas of voxshift's documents live.

A document that arrives as JSON (per-agent voice settings, ...) is checked by a model here; the
rules over the validated values stay pure in :mod:`voxshift.core`, which imports no third-party
library. (The process settings are the exception: :mod:`voxshift.config` is pydantic-settings.)
"""
