"""Builder of the AlertmanagerConfig (pure; wire format): this system's alerts routed by severity and
by the seed's policy category to the configured receivers' channels, credentials only by
reference to the credentials Secret."""

from __future__ import annotations

from typing import Any

from ..config.lookups import credentials_secret_name
from ..config.monitoring import Channel, Receiver
from ..config.system import SystemConfig
from .meta import operator_meta


def _configs(system: SystemConfig, receiver: Receiver) -> dict[Channel, tuple[str, list[dict[str, Any]]]]:
    """The receiver's channel configs by channel: (AlertmanagerConfig field, configs)."""
    secret = credentials_secret_name(system)
    keys = system.monitoring.secret_keys()
    configs: dict[Channel, tuple[str, list[dict[str, Any]]]] = {}
    if receiver.slack is not None:
        configs[Channel.SLACK] = ("slackConfigs", [{
            "apiURL": {"name": secret, "key": keys[receiver.slack.webhook_url_secret]},
            "channel": receiver.slack.channel, "sendResolved": True}])
    if receiver.email is not None:
        email: dict[str, Any] = {"to": receiver.email.to, "from": receiver.email.sender,
                                 "smarthost": receiver.email.smarthost, "sendResolved": True}
        if receiver.email.username:
            email["authUsername"] = receiver.email.username
        if receiver.email.password_secret:
            email["authPassword"] = {"name": secret, "key": keys[receiver.email.password_secret]}
        configs[Channel.EMAIL] = ("emailConfigs", [email])
    if receiver.pagerduty is not None:
        configs[Channel.PAGERDUTY] = ("pagerdutyConfigs", [{
            "routingKey": {"name": secret, "key": keys[receiver.pagerduty.routing_key_secret]},
            "sendResolved": True}])
    return configs


def _matchers(receiver: Receiver, category: str) -> list[dict[str, str]]:
    return [{"name": "severity", "matchType": "=~", "value": "|".join(severity.value
                                                                     for severity in receiver.severities)},
            {"name": "category", "matchType": "=", "value": category}]


def alertmanager_config(system: SystemConfig) -> dict[str, Any]:
    """Routes this system's alerts by severity and policy category to the configured receivers: an alert of a
    category reaches only the receiver's channels `category_channels` names (through a receiver variant
    `<name>-<category>` holding just those), one without a category all of them. Credentials are Secret
    references."""
    receivers: list[dict[str, Any]] = [{"name": "default"}]  # the root route's catch-all, delivering nowhere
    routes = []
    for receiver in system.monitoring.receivers:
        configs = _configs(system, receiver)
        receivers.append({"name": receiver.name, **{field: entries for field, entries in configs.values()}})
        for category, channels in system.monitoring.category_channels.items():
            allowed = {channel: configs[channel] for channel in channels if channel in configs}
            if not allowed:
                continue  # none of this receiver's channels serve the category
            target = receiver.name
            if len(allowed) < len(configs):
                target = f"{receiver.name}-{category.value}".replace("_", "-")
                receivers.append({"name": target, **{field: entries for field, entries in allowed.values()}})
            routes.append({"receiver": target, "continue": True, "matchers": _matchers(receiver, category.value)})
        routes.append({"receiver": receiver.name, "continue": True, "matchers": _matchers(receiver, "")})
    spec: dict[str, Any] = {"route": {"receiver": "default", "groupBy": ["alertname", "namespace", "agent_id"],
                                      "groupWait": "30s", "groupInterval": "5m", "repeatInterval": "4h",
                                      "matchers": [{"name": "system", "matchType": "=", "value": system.name}],
                                      "routes": _escalation_routes(system) + routes},
                            "receivers": receivers}
    if system.monitoring.escalation is not None:
        escalation = system.monitoring.escalation
        spec["muteTimeIntervals"] = [{"name": BUSINESS_HOURS, "timeIntervals": [{
            "weekdays": [escalation.business_days],
            "times": [{"startTime": escalation.business_start, "endTime": escalation.business_end}]}]}]
    return {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
            "metadata": operator_meta(system, f"{system.name}-routing"), "spec": spec}


BUSINESS_HOURS = "business-hours"


def _escalation_routes(system: SystemConfig) -> list[dict[str, Any]]:
    """The seed's escalation: in business hours (the route is active then) the primary, after hours (muted
    then) on-call; an escalated alert (`escalation: secondary`, rules.escalation_rules) the secondary or
    the backup the same way. Each route continues, so the severity routes still notify their channels."""
    escalation = system.monitoring.escalation
    if escalation is None:
        return []
    severities = {"name": "severity", "matchType": "=~", "value": "critical|warning"}
    routes = []
    for level, business, after_hours in (("", escalation.business_primary, escalation.after_hours_primary),
                                         ("secondary", escalation.business_secondary,
                                          escalation.after_hours_secondary)):
        matchers = [{"name": "escalation", "matchType": "=", "value": level}, severities]
        routes += [{"receiver": business, "continue": True, "matchers": matchers,
                    "activeTimeIntervals": [BUSINESS_HOURS]},
                   {"receiver": after_hours, "continue": True, "matchers": matchers,
                    "muteTimeIntervals": [BUSINESS_HOURS]}]
    return routes
