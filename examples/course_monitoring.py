"""The course's monitoring example, run against the project's simulated agents.

    ./run simulate --agents 3 &      # agents at http://127.0.0.1:9100
    ./run example                    # this file: python -m examples.course_monitoring

It uses only the course's API (`distributed_monitoring.py`): the collector with a rule and a
handler, the system overview, the performance report, and a trace through two agents.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from monitoring import DistributedMetricsCollector, DistributedTracing, SystemAlert


async def print_alert(alert: SystemAlert) -> None:
    print(f"ALERT [{alert.severity.value}] {alert.alert_id}: {alert.description}", flush=True)


async def main(simulator: str, agents: int, seconds: float) -> None:
    async with DistributedMetricsCollector(collection_interval=1.0) as collector:
        collector.add_alert_handler(print_alert)
        collector.add_alert_rule({
            "name": "high_cpu", "description": "Agent {agent_id}: {metric_name} at {value:.1f}%",
            "condition_type": "threshold", "metric_name": "agent_cpu_usage_percent", "operator": ">",
            "threshold": 30.0, "severity": "warning"})
        for index in range(agents):
            base = f"{simulator}/agents/agent-{index}"
            await collector.register_agent(f"agent-{index}", {
                "metrics_endpoint": f"{base}/metrics?format=json", "health_endpoint": f"{base}/health"})
        await asyncio.sleep(seconds)

        overview = collector.get_system_overview()["system_overview"]
        print("overview:", json.dumps({key: overview["agents"][key]
                                       for key in ("total_agents", "active_agents", "unhealthy_agents")}))
        print("alerts:", json.dumps(overview["alerts"]))
        report = (await collector.generate_performance_report(time_window_hours=1))["performance_report"]
        for agent_id, performance in sorted(report["agent_performance"].items()):
            print(f"report: {agent_id} health {performance['health_score']:.0f}, "
                  f"{performance['total_metrics']} metrics")

    tracing = DistributedTracing()
    plan = await tracing.start_trace("request-1", "plan", "agent-0")
    search = await tracing.start_trace("request-1", "search", "agent-1")
    await asyncio.sleep(0.05)
    await tracing.finish_span(search)
    await tracing.finish_span(plan, status="completed")
    analysis = tracing.get_trace_analysis("request-1")
    print("trace:", json.dumps({key: analysis[key] for key in ("total_spans", "completed_spans", "critical_path")}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", default="http://127.0.0.1:9100", help="base URL of ./run simulate")
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to collect")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.simulator, arguments.agents, arguments.seconds))
