"""The migration: the router between voice_v2 and legacy, shadow runs, the regression watch."""
