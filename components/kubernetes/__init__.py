"""Pure builders of native Kubernetes kinds: namespaces, pods, workloads, network policies, the monitoring pod."""
