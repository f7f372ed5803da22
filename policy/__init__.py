"""The project's Pulumi policy pack (see README: Policy pack)."""
