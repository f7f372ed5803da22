"""Builders of External Secrets Operator kinds: Secrets filled from a secret store (GitOps, no values in git)."""
