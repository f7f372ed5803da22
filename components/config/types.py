"""Field types of the system config: validated strings (ids, quantities, labels, durations),
the strict base model, and the enums of Kubernetes string fields.

Each validator's message says what is wrong and how to write it instead; `errors.py`
adds the field path.
"""

from __future__ import annotations

import ipaddress

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .quantities import QuantityError, cpu_cores, memory_bytes, normalize_quantity

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_IMAGE_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REPOSITORY = re.compile(
    rf"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::\d+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$")
_PROM_DURATION = re.compile(r"^(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_PROM_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# Longest agent id: the Deployment name plus the longest suffix the program adds
# ("-canary", "-green") must stay a 63-character DNS label.
MAX_AGENT_ID_LENGTH = 50


# --- field types ---------------------------------------------------------------------------

def _agent_id(value: str) -> str:
    if len(value) > MAX_AGENT_ID_LENGTH or not _DNS1035_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid agent id: use lowercase letters, digits and '-', "
                         f"start with a letter, end with a letter or digit, at most "
                         f"{MAX_AGENT_ID_LENGTH} characters (e.g. 'research-agent')")
    return value


def _namespace(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid namespace name: use lowercase letters, digits and '-', "
                         f"at most 63 characters, starting and ending with a letter or digit")
    return value


def _port_name(value: str) -> str:
    if len(value) > 15 or not DNS1123_LABEL.match(value) or not re.search("[a-z]", value) or "--" in value:
        raise ValueError(f"{value!r} is not a valid port name: at most 15 lowercase letters, digits and "
                         f"single '-', with at least one letter (e.g. 'http', 'metrics')")
    return value


def _cpu(value: str) -> str:
    try:
        cpu_cores(value)
    except QuantityError as error:
        raise ValueError(str(error)) from None
    return value


def _memory(value: str) -> str:
    try:
        memory_bytes(value)
    except QuantityError as error:
        raise ValueError(str(error)) from None
    return value


def _quantity_input(value: Any) -> Any:
    try:
        return normalize_quantity(value)
    except QuantityError:
        return value  # let the str type check report it


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration; write it like '30s', '1.5s', '500ms' or '1m'")
    return value


def _prom_duration(value: str) -> str:
    if not _PROM_DURATION.match(value) or prom_duration_seconds(value) <= 0:
        raise ValueError(f"{value!r} is not a Prometheus duration; write it like '30m', '1h', '1d' or '1w' "
                         f"(units largest first, above zero)")
    return value


def prom_duration_seconds(value: str) -> float:
    """Seconds of a Prometheus duration such as '1d12h'."""
    return sum(int(number) * _PROM_UNIT_SECONDS[unit] for number, unit in re.findall(r"(\d+)(ms|[smhdwy])", value))


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        raise ValueError(f"label key {key!r} has an invalid prefix; it must be a DNS subdomain such as 'example.com'")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(f"label key {key!r} is invalid: at most 63 letters, digits, '-', '_' or '.', "
                         f"starting and ending with a letter or digit")
    return key


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        _label_key(key)
        if len(value) > 63 or (value and not _LABEL_NAME.match(value)):
            raise ValueError(f"label value {value!r} (key {key!r}) is invalid: at most 63 letters, digits, "
                             f"'-', '_' or '.', starting and ending with a letter or digit")
    return labels


def _env_names(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment variable name (letters, digits, '_', '-', '.')")
    return env


def _stringify_values(value: Any) -> Any:
    """YAML turns `DEBUG: true` and `PORT: 8080` into bool/int; env vars and labels are strings."""
    if isinstance(value, dict):
        return {key: ("true" if item is True else "false" if item is False else str(item))
                if isinstance(item, (bool, int, float)) else item for key, item in value.items()}
    return value


def _image_repository(value: str) -> str:
    if "@" in value or re.search(r":[^/]*$", value):
        raise ValueError(f"{value!r} includes a tag or digest; put it in `tag` (or `digest`) instead")
    if not _IMAGE_REPOSITORY.match(value):
        raise ValueError(f"{value!r} is not an image repository; write it like 'ghcr.io/acme/research-agent' "
                         f"(lowercase path, optional registry host)")
    return value


def _image_tag(value: str) -> str:
    if value and not _IMAGE_TAG.match(value):
        raise ValueError(f"{value!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128, "
                         f"starting with a letter, digit or '_'), e.g. '1.4.2'")
    return value


def _digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(f"{value!r} is not an image digest; write it as 'sha256:' and 64 hex digits")
    return value


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _http_url(value: str) -> str:
    try:
        _HTTP_URL.validate_python(value)
    except PydanticValidationError:
        raise ValueError(f"{value!r} is not an http(s) URL; write it like 'http://alertmanager:9093'") from None
    return value  # as written: the service parses it again


def _int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} must be >= 0")
        return value
    if not re.fullmatch(r"\d{1,3}%", value) or int(value[:-1]) > 100:
        raise ValueError(f"{value!r} must be a count such as 1 or a percentage from '0%' to '100%'")
    return value


AgentId = Annotated[str, AfterValidator(_agent_id)]
ImageRepository = Annotated[str, AfterValidator(_image_repository)]
ImageTag = Annotated[str, AfterValidator(_image_tag)]
ImageDigest = Annotated[str, AfterValidator(_digest)]
HttpUrlString = Annotated[str, AfterValidator(_http_url)]


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an address range; write it as 10.0.0.0/8 or 10.0.0.1/32") from None


Cidr = Annotated[str, AfterValidator(_cidr)]
IntOrPercent = Annotated[int | str, AfterValidator(_int_or_percent)]
Namespace = Annotated[str, AfterValidator(_namespace)]
PortName = Annotated[str, AfterValidator(_port_name)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
Cpu = Annotated[str, BeforeValidator(_quantity_input, json_schema_input_type=str | int | float), AfterValidator(_cpu)]
Memory = Annotated[str, BeforeValidator(_quantity_input, json_schema_input_type=str | int),
                   AfterValidator(_memory)]
Duration = Annotated[str, AfterValidator(_duration)]
PromDuration = Annotated[str, AfterValidator(_prom_duration)]  # Prometheus' own: also d, w, y (no fractions)
_ScalarMap = dict[str, str | int | float | bool]
Labels = Annotated[dict[str, str], BeforeValidator(_stringify_values, json_schema_input_type=_ScalarMap),
                   AfterValidator(_labels)]
EnvVars = Annotated[dict[str, str], BeforeValidator(_stringify_values, json_schema_input_type=_ScalarMap),
                    AfterValidator(_env_names)]


class StrictModel(BaseModel):
    """Base for every config model: unknown fields are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, use_enum_values=False)


# --- enums (Kubernetes string fields) -------------------------------------------------------

class Protocol(str, Enum):
    """Transport protocol of a container/service port."""
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class ServiceType(str, Enum):
    """How the agent's Service is exposed."""
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class PullPolicy(str, Enum):
    """Container image pull policy."""
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Placement(str, Enum):
    """How strongly replicas are spread: `required` refuses to schedule rather than co-locate."""
    REQUIRED = "required"
    PREFERRED = "preferred"
    NONE = "none"


class PodSecurityLevel(str, Enum):
    """Pod Security Standard enforced on namespaces the program creates."""
    RESTRICTED = "restricted"
    BASELINE = "baseline"
    PRIVILEGED = "privileged"


class ScalingPolicyType(str, Enum):
    """HPA behavior policy unit."""
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(str, Enum):
    """Which HPA behavior policy wins when several apply."""
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class LoadBalancerAlgorithm(str, Enum):
    """Istio DestinationRule simple load balancer."""
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    LEAST_CONN = "LEAST_CONN"
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"


class TolerationOperator(str, Enum):
    """Toleration match operator."""
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(str, Enum):
    """Taint effect a toleration matches."""
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Severity(str, Enum):
    """Alert severity, the `severity` label Alertmanager routes on (the collector's and the PrometheusRule's)."""
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    EMERGENCY = "emergency"
