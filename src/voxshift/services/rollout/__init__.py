"""The rollout controller's service layer: the leader lease and its fencing tokens, the fenced state
document, transition webhooks, and the controller loop that ties them to the flags and metrics."""
