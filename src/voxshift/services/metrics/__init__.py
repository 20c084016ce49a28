"""Migration metrics: in-process recording, the stored hourly keys, Prometheus."""
