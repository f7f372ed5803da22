"""Builders of KEDA kinds: event-driven scaling of agents."""
