"""The legacy sunset, the pure part: what the migration off PlatformAI-HUB's voice stack decides
without touching a store (the settings conversion in :mod:`voxshift.core.sunset.settings`).

Pure: no I/O, standard library only; the services in ``voxshift.services.sunset`` do the reading,
writing and pydantic validation around it.
"""
