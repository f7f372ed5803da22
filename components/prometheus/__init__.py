"""Pure builders of Prometheus Operator objects (monitors, rules, alert routing) and Grafana dashboards."""
