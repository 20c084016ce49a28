"""Wiring: settings to stores and engines, dependency health, the runtime that owns them all."""
