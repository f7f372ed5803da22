"""Settings of the monitoring service, validated once at start-up.

Sources, strongest first: command-line flags (`--host`, `--port`), environment variables
with the `MONITORING_` prefix (nested with `__`, e.g. `MONITORING_ALERTMANAGER__URL`),
the optional settings file (`--config`, YAML or JSON), then the defaults, which run on a
laptop with no file at all.
"""

from __future__ import annotations

import ipaddress
import re
from contextvars import ContextVar
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, HttpUrl, SecretStr, StringConstraints, TypeAdapter,
                      UrlConstraints, ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .credentials import token_weakness
from .label_limits import LabelLimits

# What an agent id may be, wherever one enters (static agents, remote-write's agent label, OTLP agent names that
# become metric labels): a DNS subdomain's length, and characters that need no escaping anywhere.
MAX_AGENT_ID = 253
AGENT_ID_PATTERN = r"^[A-Za-z0-9_.:/-]+$"


def agent_id_problem(agent_id: str) -> str | None:
    """Why `agent_id` is not a valid agent id, or None."""
    if not 1 <= len(agent_id) <= MAX_AGENT_ID:
        return f"agent ids are 1 to {MAX_AGENT_ID} characters (this one: {len(agent_id)})"
    if _AGENT_ID.fullmatch(agent_id) is None:
        return "agent ids hold only letters, digits and _ . : / -"
    return None


_AGENT_ID = re.compile(AGENT_ID_PATTERN[1:-1])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Operator(str, Enum):
    """Comparison of a threshold rule."""
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    EQ = "=="
    NE = "!="


class RuleType(str, Enum):
    """`threshold` compares the latest value; `rate_of_change` its per-second change over a window."""
    THRESHOLD = "threshold"
    RATE_OF_CHANGE = "rate_of_change"


class Severity(str, Enum):
    """Alert severity, as Alertmanager routes on it (the course's AlertSeverity)."""
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    EMERGENCY = "emergency"


AGENT_DOWN_RULE = "AgentUnreachable"  # the built-in alert of an agent that cannot be scraped


class AlertRuleSpec(_Strict):
    """An alert rule over the agents' samples (the seed's alert_rules entries)."""

    rule_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                         description="Unique id; the alert's `alertname`.")
    metric: str | None = Field(None, min_length=1, max_length=200, description="Metric name the rule watches; "
                                                                               "null for every metric (as the "
                                                                               "course's rules without "
                                                                               "metric_name).")
    type: RuleType = Field(RuleType.THRESHOLD, description="threshold or rate_of_change.")
    operator: Operator = Field(Operator.GT, description="Comparison: >, <, >=, <=, ==, !=.")
    threshold: float = Field(description="Value (or per-second rate) compared against.")
    window_seconds: float = Field(300.0, gt=0, le=86400, description="rate_of_change: look-back window.")
    agent_id: str | None = Field(None, max_length=253, description="Only this agent; null for every agent.")
    severity: Severity = Field(Severity.WARNING, description="info, warning, critical or emergency.")
    description: str = Field("", max_length=1024, description="Human text for the alert; {agent_id}, "
                                                               "{metric_name} and {value} are filled in.")

    @field_validator("rule_id")
    @classmethod
    def _not_reserved(cls, rule_id: str) -> str:
        if rule_id == AGENT_DOWN_RULE:
            raise ValueError(f"{AGENT_DOWN_RULE!r} is the built-in agent-health alert; choose another rule_id")
        return rule_id


class StaticAgent(_Strict):
    """An agent to scrape from start-up (the seed's register_agent arguments)."""

    agent_id: str = Field(min_length=1, max_length=MAX_AGENT_ID, pattern=AGENT_ID_PATTERN, description="Agent id.")
    metrics_endpoint: Annotated[HttpUrl, UrlConstraints(max_length=2048)] = Field(
        description="URL serving Prometheus text or the seed's JSON metrics.")
    health_endpoint: Annotated[HttpUrl, UrlConstraints(max_length=2048)] | None = Field(
        None, description="Optional health URL, probed with each scrape.")
    info: dict[Annotated[str, StringConstraints(max_length=63)], Annotated[str, StringConstraints(max_length=256)]] = (
        Field(default_factory=dict, max_length=32, description="Free-form labels shown in the API (at most 32, "
                                                               "keys up to 63 and values up to 256 characters)."))


class DiscoverySettings(_Strict):
    """Kubernetes discovery of agent pods (in-cluster service-account auth)."""

    enabled: bool = Field(False, description="Watch pods in `namespaces` and scrape them.")
    namespaces: list[str] = Field(default_factory=lambda: ["agents"], description="Namespaces to watch.")
    label_selector: str = Field("app.kubernetes.io/managed-by=pulumi,agent-id",
                                description="Pods to scrape.")
    agent_id_label: str = Field("agent-id", description="Pod label holding the agent id.")
    metrics_port: int | str = Field("metrics", description="Container port (name or number) serving metrics.")
    metrics_path: str = Field("/metrics", description="HTTP path of the metrics endpoint.")


class AlertmanagerSettings(_Strict):
    """Delivery to Alertmanager's v2 API."""

    url: HttpUrl | None = Field(None, description="Base URL, e.g. http://alertmanager:9093; null to disable.")
    resend_interval: float = Field(60.0, gt=0, description="Re-send firing alerts so Alertmanager keeps them.")


class WebhookSettings(_Strict):
    """Delivery to a generic JSON webhook."""

    url: HttpUrl | None = Field(None, description="URL receiving a POST per alert change; null to disable.")
    token: SecretStr | None = Field(None, description="Bearer token sent to the webhook.")


class HealthSettings(_Strict):
    """Heartbeats and health-score inputs."""

    cpu_metric: str = Field("agent_cpu_usage_percent", description="Agent metric with CPU usage in percent.")
    memory_metric: str = Field("agent_memory_usage_bytes", description="Agent metric with memory usage.")
    memory_unit: Literal["bytes", "percent"] = Field(
        "bytes", description="Unit of memory_metric. Bytes are scored as a percentage of the agent's memory "
                             "limit: the pod's (discovery) or the registration's info.memory_limit_bytes; "
                             "without a limit memory is not scored.")
    unhealthy_after: float = Field(45.0, gt=0, description="Seconds without a successful scrape -> unhealthy.")
    lost_after: float = Field(300.0, gt=0, description="Seconds without a successful scrape -> lost.")
    failures_before_alert: int = Field(2, ge=1, description="Failed scrapes in a row before the agent-down alert.")


class RelaySettings(_Strict):
    """Forwarding of every accepted OTLP export to an upstream OTLP/HTTP endpoint."""

    endpoint: HttpUrl = Field(description="Base URL of the upstream (as OTEL_EXPORTER_OTLP_ENDPOINT), e.g. "
                                          "http://otel-collector.observability:4318; /v1/<signal> is appended.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (not secret).")
    authorization: SecretStr | None = Field(None, description="Authorization header value, e.g. 'Bearer ...'.")
    signals: list[Literal["traces", "metrics", "logs"]] = Field(
        default_factory=lambda: ["traces", "metrics", "logs"], description="Signals to forward.")
    max_queue_requests: int = Field(1_000, ge=1, description="Exports waiting or being sent at most.")
    max_queue_bytes: int = Field(64 * 2**20, ge=2**16, description="Bytes waiting or being sent at most.")
    max_attempts: int = Field(6, ge=1, le=100, description="Attempts per export (429/502/503/504 and connection "
                                                           "errors are retried).")
    max_elapsed: float = Field(120.0, gt=0, description="Seconds after which an export is given up.")
    timeout: float = Field(10.0, gt=0, description="Timeout of one attempt, in seconds.")
    workers: int = Field(2, ge=1, le=64, description="Exports sent at once.")


class TracingSettings(_Strict):
    """The distributed tracer's bounds and OTLP ingestion."""

    max_traces: int = Field(10_000, ge=1, description="Traces kept at most (the oldest is dropped).")
    max_spans_per_trace: int = Field(10_000, ge=1, description="Spans kept per trace (more are refused).")
    retention_seconds: float = Field(600.0, gt=0, description="Finished traces are dropped after this long.")
    max_bytes: int = Field(256 * 2**20, ge=2**20, description="Byte budget of the live traces (an estimate per "
                                                              "span incl. attributes and events); the oldest "
                                                              "traces go first.")
    max_attributes: int = Field(128, ge=1, le=10_000, description="Attributes kept per span and per event.")
    max_attribute_length: int = Field(4096, ge=16, description="Longest attribute value kept (longer are cut).")
    max_events: int = Field(128, ge=0, le=10_000, description="Events kept per span.")
    max_links: int = Field(128, ge=0, le=10_000, description="Links kept per span.")
    agent_attribute: str = Field("service.name", description="OTLP resource attribute holding the agent id "
                                                             "(a span's gen_ai.agent.name refines it).")
    max_otlp_bytes: int = Field(4 * 2**20, ge=1024, description="Largest OTLP request body (after decompression).")
    max_otlp_items: int = Field(100_000, ge=100, description="Resources, scopes, metrics and spans, data points or "
                                                           "log records in one OTLP export at most; more: 413, "
                                                           "counted.")
    max_otlp_json_values: int = Field(500_000, ge=1_000, description="JSON values (objects, arrays and their members, "
                                                                     "counted from the text before it is parsed) in "
                                                                     "one OTLP/JSON export at most; more: 413, "
                                                                     "counted.")
    max_metric_streams: int = Field(10_000, ge=1, description="GenAI client metric streams kept from /v1/metrics.")
    max_metric_attribute_bytes: int = Field(2 * 2**20, ge=1024, description="Bytes of point attribute names and "
                                                                            "values in one /v1/metrics request at "
                                                                            "most (label_limit and the label length "
                                                                            "limits apply to each point); more: the "
                                                                            "body is refused whole.")
    relay: RelaySettings | None = Field(None, description="Forward every accepted OTLP export upstream; null "
                                                          "to keep them here only.")


class RemoteWriteSettings(_Strict):
    """Prometheus remote-write in (`source: remote_write`; monitoring/remote_write.py)."""

    agent_label: str = Field("agent_id", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
                             description="Series label naming the agent (the ServiceMonitor relabeling sets agent_id).")
    max_request_bytes: int = Field(8 * 2**20, ge=1024, description="Largest compressed request body.")
    max_decompressed_bytes: int = Field(16 * 2**20, ge=1024, description="Largest body after snappy decompression "
                                                                         "(16 MiB: ten times what 10,000 series "
                                                                         "of usual labels take).")
    max_series_per_request: int = Field(10_000, ge=1, le=100_000,
                                        description="Series per request at most (Prometheus sends "
                                                    "max_samples_per_send, 2,000 by default); more: 413.")
    max_samples_per_request: int = Field(50_000, ge=1, le=1_000_000,
                                         description="Samples per request at most (Prometheus sends "
                                                     "max_samples_per_send, 2,000 by default); more: 413.")
    max_labels_per_series: int = Field(64, ge=2, description="Labels per series at most, all of them (__name__ "
                                                              "and the target labels too; label_limit applies "
                                                              "too); a series with more is left out (400).")
    max_label_bytes_per_request: int = Field(8 * 2**20, ge=1024, description="Bytes of label names and values "
                                                                             "in one request at most; more: 413.")
    max_agents_per_namespace: int = Field(10_000, ge=1, description="Agents one namespace may have registered "
                                                                    "through remote-write; new ones beyond are "
                                                                    "dropped and counted (so one namespace "
                                                                    "can't fill max_agents).")
    max_series_per_namespace: int = Field(100_000, ge=1, description="Series the agents of one namespace may "
                                                                     "hold; new series beyond are dropped and "
                                                                     "counted.")
    # None until MonitoringSettings fills it in: the default follows max_series_bytes, so quotas add up.
    max_bytes_per_namespace: int | None = Field(None, ge=2**16, description="Estimated bytes the series of one "
                                                                            "namespace may hold (labels and full "
                                                                            "rolling windows), at most "
                                                                            "max_series_bytes; new series beyond "
                                                                            "are dropped and counted. null: a "
                                                                            "quarter of max_series_bytes (80 MiB), "
                                                                            "so a few namespaces can't starve the "
                                                                            "others.")


class TargetSettings(_Strict):
    """Which addresses API-registered agents may be scraped at (the scrape allow-list)."""

    namespaces: list[str] | None = Field(None, description="Agent namespaces whose pod and service addresses "
                                                           "may be scraped when not local; null: the discovery "
                                                           "namespaces.")
    cluster_domain: str = Field("cluster.local", description="The cluster's DNS domain (service names end in "
                                                             "<namespace>.svc.<cluster_domain>).")


class PersistenceSettings(_Strict):
    """Where what is set through the API (registrations, rules) and active alerts are kept across restarts."""

    path: Path | None = Field(None, description="A JSON file (local runs); null for none.")
    config_map: str | None = Field(None, description="A ConfigMap in the service's namespace, written through the "
                                                     "Kubernetes API (in the cluster); null for none.")
    namespace: str | None = Field(None, description="The service's namespace for config_map; null: the pod's own "
                                                    "(from the service account).")
    interval: float = Field(1.0, gt=0, le=300, description="Seconds between checks for changes to save.")


MAX_CREDENTIAL_BYTES = 4096
# The credential settings and the environment variables that set them (as they are named in messages).
CREDENTIAL_ENV = {"auth.admin_token": "MONITORING_AUTH__ADMIN_TOKEN", "auth.read_token": "MONITORING_AUTH__READ_TOKEN",
                  "auth.ingest_key": "MONITORING_AUTH__INGEST_KEY", "api_token": "MONITORING_API_TOKEN"}


class SettingProblem(ValueError):
    """A problem whose message names its setting and where it is set (shown as it is)."""


class CredentialProblem(SettingProblem):
    """A credential setting is refused: says which setting, where it can be set, and how to fix it."""

    def __init__(self, setting: str, reason: str, file: Path | None = None) -> None:
        where = CREDENTIAL_ENV[setting] + (f", or the file {file}" if file is not None else "")
        super().__init__(f"{setting} ({where}): {reason}")


def _credential_problem(value: SecretStr | None) -> str | None:
    """Why a configured credential can't be used (None: it can): too short, placeholder-shaped or guessable."""
    return None if value is None else token_weakness(value.get_secret_value().strip())


class AuthSettings(_Strict):
    """Credentials by scope (monitoring/credentials.py): admin for changes, read for the API, and the key
    the agents' ingestion tokens derive from. Required when the service listens beyond loopback."""

    admin_token: SecretStr | None = Field(None, description="Bearer token for changes under /api (and every "
                                                           "other scope).")
    read_token: SecretStr | None = Field(None, description="Bearer token for reads under /api.")
    ingest_key: SecretStr | None = Field(None, description="Key of the ingestion tokens (mi2.<kind>.<name>.<hmac>) "
                                                          "agents send to /v1/* and the span API.")

    @field_validator("admin_token", "read_token", "ingest_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        problem = _credential_problem(value)
        if problem is not None:
            raise CredentialProblem(f"auth.{info.field_name}", problem)
        return value

    def missing(self) -> list[str]:
        """The credentials that are not set."""
        return [name for name in ("admin_token", "read_token", "ingest_key") if getattr(self, name) is None]


class MonitoringSettings(BaseSettings):
    """Everything the monitoring service reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="MONITORING_", env_nested_delimiter="__", extra="forbid")

    host: str = Field("127.0.0.1", description="Listen address (the pod sets 0.0.0.0).")
    port: int = Field(8000, ge=1, le=65535, description="Listen port.")
    collection_interval: float = Field(15.0, gt=0, le=3600, description="Seconds between scrapes of one agent.")
    collection_jitter: float = Field(0.1, ge=0, le=0.5, description="Random spread of each scrape, as a "
                                                                    "fraction of the interval.")
    scrape_timeout: float = Field(5.0, gt=0, description="Timeout of one scrape, in seconds.")
    max_concurrent_scrapes: int = Field(256, ge=1, description="Scrapes in flight at once.")
    max_response_bytes: int = Field(4 * 2**20, ge=1024, description="Largest metrics body read from an agent.")
    max_samples_per_scrape: int = Field(20_000, ge=1, description="Samples kept from one scrape.")
    label_limit: int = Field(64, ge=1, le=1_000, description="Labels per sample at most, for every source (as "
                                                              "Prometheus' label_limit); a body with more is "
                                                              "refused whole and counted.")
    label_name_length_limit: int = Field(256, ge=16, le=65_536, description="Longest label name, in characters "
                                                                             "(label_name_length_limit).")
    label_value_length_limit: int = Field(2048, ge=16, le=1_048_576, description="Longest label value, in "
                                                                                  "characters "
                                                                                  "(label_value_length_limit).")
    max_label_bytes_per_scrape: int = Field(2**20, ge=1024, description="Label names and values of all the "
                                                                         "samples of one scraped body together, "
                                                                         "in characters; a body with more is "
                                                                         "refused whole and counted.")
    max_series_per_agent: int = Field(2_000, ge=1, description="Rolling windows kept per agent.")
    # Bytes as well as counts: a series' labels may be large. The two budgets below and tracing.max_bytes
    # (256 MiB) leave room for the rest of the service in the pod's 1 GiB.
    max_series_bytes_per_agent: int = Field(16 * 2**20, ge=2**16, description="Estimated bytes of one agent's "
                                                                               "rolling windows (points, labels "
                                                                               "and keys); new series beyond "
                                                                               "are refused and counted.")
    max_series_bytes: int = Field(320 * 2**20, ge=2**20, description="Estimated bytes of every agent's rolling "
                                                                      "windows together; new series beyond are "
                                                                      "refused and counted.")
    max_agents: int = Field(20_000, ge=1, description="Registered agents at most.")
    # For every source with its own timestamps (scraped text and JSON, remote-write): a sample stamped far ahead
    # would become its window's newest point and every real one after it be refused as out of order.
    max_sample_age: float = Field(3600.0, gt=0, le=7 * 86400, description="Seconds a sample's own timestamp may lie "
                                                                          "in the past (as the TSDB's out-of-bounds "
                                                                          "check); older samples are dropped and "
                                                                          "counted (a remote-written series with "
                                                                          "one is left out, 400).")
    max_sample_future: float = Field(600.0, ge=0, le=86400, description="Seconds a sample's own timestamp may lie "
                                                                        "in the future (clock skew); further: "
                                                                        "dropped and counted as max_sample_age.")
    window_size: int = Field(120, ge=2, description="Samples kept per agent/metric rolling window.")
    recent_metrics_size: int = Field(10_000, ge=1, description="Samples in the recent-metrics buffer.")
    recent_metrics_bytes: int = Field(32 * 2**20, ge=2**16, description="Estimated bytes of the recent-metrics "
                                                                         "buffer (samples with their labels); the "
                                                                         "oldest samples go first.")
    alert_history_size: int = Field(1_000, ge=1, description="Resolved alerts kept for reports.")
    max_active_alerts: int = Field(10_000, ge=1, description="Alerts firing at once at most (more are counted "
                                                              "and dropped: one rule over every metric can fire "
                                                              "for each series of each agent).")
    system_metrics_interval: float = Field(15.0, gt=0, description="Seconds between psutil samples of this pod.")
    api_token: SecretStr | None = Field(None, description="Former name of auth.admin_token (still accepted); "
                                                         "loopback clients may change anything.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Credentials by scope.")
    credentials_dir: Path | None = Field(None, description="A directory of credential files named as the keys of "
                                                           "the credentials Secret (api-token, read-token, "
                                                           "ingest-key, trace-relay-authorization): a mounted "
                                                           "Secret. A credential set in the environment wins.")
    max_request_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body the API accepts.")
    max_alert_rules: int = Field(1_000, ge=1, description="Alert rules at most (settings and API together).")
    request_timeout: float = Field(30.0, gt=0, description="Seconds a client may take to send a request body.")
    metrics_cache_seconds: float = Field(1.0, ge=0, le=60, description="Seconds one rendering of /metrics is "
                                                                      "served to every request (requests during a "
                                                                      "rendering share it too).")
    metrics_write_timeout: float = Field(30.0, gt=0, description="Seconds a client may take to read a /metrics "
                                                                 "response (Prometheus' scrape timeout is at most "
                                                                 "this); a slower one is disconnected.")
    max_metrics_responses: int = Field(4, ge=1, le=1_000, description="/metrics responses being sent at once at "
                                                                      "most; more: 503 with Retry-After.")
    idle_timeout: float = Field(30.0, gt=0, description="Seconds a connection may go without completing a "
                                                        "request (headers included) before it is closed.")
    source: Literal["scrape", "remote_write"] = Field("scrape", description="scrape: the service scrapes the agents; "
                                                                            "remote_write: Prometheus scrapes them and "
                                                                            "remote-writes to POST /api/v1/write; the "
                                                                            "service scrapes nothing.")
    remote_write: RemoteWriteSettings = Field(default_factory=RemoteWriteSettings,
                                              description="Remote-write in (source: remote_write).")
    agents: list[StaticAgent] = Field(default_factory=list, description="Agents scraped from start-up.")
    alert_rules: list[AlertRuleSpec] = Field(default_factory=list, description="Alert rules.")
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings, description="Alertmanager.")
    webhook: WebhookSettings = Field(default_factory=WebhookSettings, description="Generic webhook.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Heartbeats and health score.")
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings, description="Kubernetes discovery.")
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="Distributed tracer.")
    targets: TargetSettings = Field(default_factory=TargetSettings, description="Scrape allow-list.")
    persistence: PersistenceSettings = Field(default_factory=PersistenceSettings, description="State kept "
                                                                                              "across restarts.")

    @property
    def label_limits(self) -> LabelLimits:
        """The label bounds every source of samples applies."""
        return LabelLimits(self.label_limit, self.label_name_length_limit, self.label_value_length_limit)

    @property
    def local(self) -> bool:
        """Listening on loopback only: local development, where loopback targets are allowed."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    @model_validator(mode="after")
    def _credentials(self) -> MonitoringSettings:
        # Command-line flags beat the environment, and the check below reads the host: apply them first.
        for name, value in _FLAGS.get().items():
            setattr(self, name, value)
        if self.api_token is not None:  # the former name of the admin token
            if self.auth.admin_token is not None:
                raise ValueError("set auth.admin_token or api_token (its former name), not both")
            problem = _credential_problem(self.api_token)
            if problem is not None:
                raise CredentialProblem("api_token", problem)
            self.auth.admin_token, self.api_token = self.api_token, None
        if self.credentials_dir is not None:  # after the environment's: those win
            self._read_credential_files(self.credentials_dir)
        self.check_credentials()
        return self

    def _read_credential_files(self, directory: Path) -> None:
        """Fill unset credentials from the files of a mounted Secret (see credentials_dir)."""
        relay = self.tracing.relay
        targets: list[tuple[str, Any, str]] = [("api-token", self.auth, "admin_token"),
                                               ("read-token", self.auth, "read_token"),
                                               ("ingest-key", self.auth, "ingest_key")]
        if relay is not None:
            targets.append(("trace-relay-authorization", relay, "authorization"))
        for file_name, owner, field in targets:
            path = directory / file_name
            if getattr(owner, field) is not None or not path.is_file():
                continue
            with path.open("rb") as file:
                value = file.read(MAX_CREDENTIAL_BYTES + 1)
            if len(value) > MAX_CREDENTIAL_BYTES:
                raise ValueError(f"credentials_dir: {path} is over {MAX_CREDENTIAL_BYTES} bytes")
            secret = SecretStr(value.decode("utf-8", "replace").strip())
            problem = _credential_problem(secret) if owner is self.auth else None
            if problem is not None:
                raise CredentialProblem(f"auth.{field}", problem, file=path)
            setattr(owner, field, secret)

    def check_credentials(self) -> None:
        """ValueError when the service would listen beyond loopback with a scope left open."""
        missing = self.auth.missing()
        if missing and not self.local:
            raise SettingProblem(f"host (MONITORING_HOST, --host): listening on {self.host} (beyond loopback) needs "
                                 f"credentials; missing: "
                                 + ", ".join(f"auth.{name} ({CREDENTIAL_ENV['auth.' + name]})" for name in missing)
                                 + "; set them, or listen on loopback (--host 127.0.0.1)")

    @model_validator(mode="after")
    def _namespace_bytes(self) -> MonitoringSettings:
        # A namespace's quota within the store's global budget, so what is left for the others is real.
        quota = self.remote_write.max_bytes_per_namespace
        if quota is None:  # a copy: a RemoteWriteSettings passed in may be shared
            was_set = "remote_write" in self.model_fields_set
            filled = self.remote_write.model_copy(update={"max_bytes_per_namespace": self.max_series_bytes // 4})
            # Still a default, not the user's: a dump of what was set (the render's settings file) leaves it out.
            filled.__pydantic_fields_set__.discard("max_bytes_per_namespace")
            self.remote_write = filled
            if not was_set:
                self.__pydantic_fields_set__.discard("remote_write")
        elif quota > self.max_series_bytes:
            raise SettingProblem(f"remote_write.max_bytes_per_namespace: {quota} bytes is over max_series_bytes "
                                 f"({self.max_series_bytes}), the budget every namespace shares; set it lower (the "
                                 f"default is a quarter of max_series_bytes) or raise max_series_bytes")
        return self

    @field_validator("alert_rules")
    @classmethod
    def _unique_rules(cls, rules: list[AlertRuleSpec]) -> list[AlertRuleSpec]:
        ids = [rule.rule_id for rule in rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(duplicates)}")
        return rules

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment (how the pod is configured) overrides the settings file.
        return env_settings, init_settings


class SettingsError(Exception):
    """Settings could not be loaded; the message lists each problem with its field."""


# The command-line flags of the load_settings call under way (see MonitoringSettings._credentials).
_FLAGS: ContextVar[dict[str, Any]] = ContextVar("monitoring_settings_flags", default={})


def load_settings(path: Path | None = None, **overrides: Any) -> MonitoringSettings:
    """Read the optional file, apply the environment and `overrides` (the command-line flags, which beat the
    environment), validate; raise SettingsError."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise SettingsError(f"cannot read settings file {path}: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"{path} must hold a mapping of settings")
        data = loaded or {}
    try:
        flags = _validated_flags({key: value for key, value in overrides.items() if value is not None})
        token = _FLAGS.set(flags)
        try:
            return MonitoringSettings(**data)
        finally:
            _FLAGS.reset(token)
    except ValidationError as error:
        lines = [f"  - {_problem(detail)}" for detail in error.errors(include_url=False)]
        raise SettingsError("invalid monitoring settings:\n" + "\n".join(lines)) from None


def _validated_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags, validated as their settings are (the model applies them without its own validation)."""
    checked, problems = {}, []
    for name, value in flags.items():
        field = MonitoringSettings.model_fields[name]
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        try:
            checked[name] = TypeAdapter(annotation).validate_python(value)
        except ValidationError as error:
            problems += [f"  - {name}: {detail['msg']}" for detail in error.errors(include_url=False)]
    if problems:
        raise SettingsError("invalid monitoring settings:\n" + "\n".join(problems))
    return checked


def _problem(detail: Any) -> str:
    """One validation problem as `<setting>: <what is wrong>`; credentials also name their variable."""
    error = detail.get("ctx", {}).get("error")
    if isinstance(error, SettingProblem):  # names its setting and variable itself
        return str(error)
    message = str(error) if isinstance(error, ValueError) else detail["msg"]
    setting = ".".join(str(part) for part in detail["loc"]) or "settings"
    return f"{setting}: {message}"
