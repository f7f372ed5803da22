"""`pulumi preview --policy-pack policy` (or `pulumi up`): the rules in rules.py, enforced."""

from pulumi_policy import PolicyPack

from pack import POLICIES

PolicyPack(name="multi-agent-system", policies=POLICIES)
