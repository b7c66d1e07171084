"""Surviving upstream failure: retries with backoff, circuit breakers, observed statistics
and load balancing across deployments of one model."""
