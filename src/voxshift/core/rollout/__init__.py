"""The rollout controller's pure core: the plan (data), the criteria verdicts (statistics), the
state machine (transitions). No I/O, no clock: callers pass ``now`` and the measured windows in."""
