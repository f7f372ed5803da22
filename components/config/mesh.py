"""System-level mesh and zero-trust settings (Istio, NetworkPolicy)."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .types import Namespace, PortNumber, StrictModel


class IstioApiVersion(str, Enum):
    """Istio API version of the objects; `v1` needs Istio 1.22+, `v1beta1` works on older clusters."""
    V1 = "v1"
    V1BETA1 = "v1beta1"


class MtlsMode(str, Enum):
    """PeerAuthentication mode between workloads."""
    STRICT = "STRICT"
    PERMISSIVE = "PERMISSIVE"
    DISABLE = "DISABLE"


class OutboundPolicy(str, Enum):
    """Where sidecars may send traffic: anywhere, or only to known services (ServiceEntry)."""
    ALLOW_ANY = "ALLOW_ANY"
    REGISTRY_ONLY = "REGISTRY_ONLY"


class ExternalProtocol(str, Enum):
    """Protocol of an external API port."""
    TLS = "TLS"
    HTTPS = "HTTPS"
    HTTP = "HTTP"
    TCP = "TCP"


class ExternalApi(StrictModel):
    """An API outside the cluster that agents may call (an LLM provider, a search API)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=50, description="Object name.")
    hosts: list[str] = Field(min_length=1, description="DNS names, e.g. ['api.openai.com'].")
    port: PortNumber = Field(443, description="Port.")
    protocol: ExternalProtocol = Field(ExternalProtocol.TLS, description="TLS for HTTPS APIs called directly.")


class MeshConfig(StrictModel):
    """Istio traffic management and zero trust between agents (AgentMesh)."""

    enabled: bool = Field(False, description="Create Istio objects and label namespaces for sidecar injection.")
    api_version: IstioApiVersion = Field(IstioApiVersion.V1, description="v1 (Istio 1.22+) or v1beta1.")
    istio_cni: bool = Field(True, description="Istio CNI is installed, so sidecars need no NET_ADMIN init "
                                              "container and the `restricted` Pod Security Standard holds.")
    trust_domain: str = Field("cluster.local", description="Mesh trust domain (SPIFFE principals).")
    mtls_mode: MtlsMode = Field(MtlsMode.STRICT, description="Mutual TLS between workloads.")
    metrics_plaintext: bool = Field(True, description="Port-level PERMISSIVE mTLS on each agent's metrics port, "
                                                      "so Prometheus outside the mesh can scrape it.")
    metrics_port_name: str = Field("metrics", description="Name of the agents' metrics port.")
    monitoring_namespace: Namespace | None = Field(None, description="Namespace of the monitoring collector and "
                                                                     "Prometheus; defaults to monitoring.namespace.")
    control_plane_namespace: Namespace = Field("istio-system", description="Istio control plane namespace.")
    ingress_namespace: Namespace = Field("istio-system", description="Namespace of the ingress gateway.")
    ingress_service_account: str = Field("istio-ingressgateway-service-account",
                                         description="Service account of the ingress gateway.")
    network_policies: bool = Field(True, description="Also enforce the call graph with Kubernetes NetworkPolicies "
                                                     "(holds with the mesh disabled too).")
    outbound_policy: OutboundPolicy = Field(OutboundPolicy.ALLOW_ANY, description="REGISTRY_ONLY allows only "
                                                                                  "in-mesh and declared external APIs.")
    external_apis: list[ExternalApi] = Field(default_factory=list, description="External APIs agents may call.")
