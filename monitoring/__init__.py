"""The monitoring service of a multi-agent system: metrics collector, alerting and HTTP API.

Runs in the monitoring pod (`python -m monitoring`); never imports pulumi.
"""
