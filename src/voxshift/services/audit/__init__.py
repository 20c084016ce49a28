"""The audit trail as the admin API shows it: flag changes, rollout transitions, sunset events."""
