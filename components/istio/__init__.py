"""Pure builders of Istio (and Flagger) kinds: traffic per agent, zero trust per namespace."""
