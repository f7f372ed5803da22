"""Builder of the AlertmanagerConfig (pure; wire format): this system's alerts routed by severity
to the configured receivers, credentials only by reference to the credentials Secret."""

from __future__ import annotations

from typing import Any

from ..config.lookups import credentials_secret_name
from ..config.system import SystemConfig
from .meta import operator_meta


def alertmanager_config(system: SystemConfig) -> dict[str, Any]:
    """Routes this system's alerts by severity to the configured receivers (credentials by Secret reference)."""
    secret = credentials_secret_name(system)
    keys = system.monitoring.secret_keys()
    receivers: list[dict[str, Any]] = [{"name": "default"}]  # the root route's catch-all, delivering nowhere
    routes = []
    for receiver in system.monitoring.receivers:
        entry: dict[str, Any] = {"name": receiver.name}
        if receiver.slack is not None:
            entry["slackConfigs"] = [{"apiURL": {"name": secret, "key": keys[receiver.slack.webhook_url_secret]},
                                      "channel": receiver.slack.channel, "sendResolved": True}]
        if receiver.email is not None:
            email: dict[str, Any] = {"to": receiver.email.to, "from": receiver.email.sender,
                                     "smarthost": receiver.email.smarthost, "sendResolved": True}
            if receiver.email.username:
                email["authUsername"] = receiver.email.username
            if receiver.email.password_secret:
                email["authPassword"] = {"name": secret, "key": keys[receiver.email.password_secret]}
            entry["emailConfigs"] = [email]
        if receiver.pagerduty is not None:
            entry["pagerdutyConfigs"] = [{"routingKey": {"name": secret,
                                                         "key": keys[receiver.pagerduty.routing_key_secret]},
                                          "sendResolved": True}]
        receivers.append(entry)
        routes.append({"receiver": receiver.name, "continue": True,
                       "matchers": [{"name": "severity", "matchType": "=~", "value": "|".join(severity.value for severity in receiver.severities)}]})
    return {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
            "metadata": operator_meta(system, f"{system.name}-routing"),
            "spec": {"route": {"receiver": "default", "groupBy": ["alertname", "namespace", "agent_id"],
                               "groupWait": "30s", "groupInterval": "5m", "repeatInterval": "4h",
                               "matchers": [{"name": "system", "matchType": "=", "value": system.name}],
                               "routes": routes},
                     "receivers": receivers}}
