"""Feature flags: the FeatureFlags service, its store, replica follow-up and the OpenFeature provider."""
