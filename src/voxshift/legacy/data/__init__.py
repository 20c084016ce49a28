"""The legacy's data, as it sits in its own stores: voice keys, voice objects, agent settings rows.

Read by the sunset (backups, the data migration, the cleanup) through ``services.sunset.sources``.
"""

from voxshift.legacy.data.bucket import LegacyBucket
from voxshift.legacy.data.keyspace import CANONICAL, REDIS_DUMP, KeyExport, LegacyKeyspace
from voxshift.legacy.data.settings_source import LegacySettingsRow, LegacySettingsSource

__all__ = [
    "CANONICAL",
    "REDIS_DUMP",
    "KeyExport",
    "LegacyBucket",
    "LegacyKeyspace",
    "LegacySettingsRow",
    "LegacySettingsSource",
]
