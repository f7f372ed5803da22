"""Which Secrets rendered objects read, which operators make, and which are left for the user to create."""

from __future__ import annotations

from typing import Any

from components.render.secret_references import (MadeSecret, SecretUse, operator_made, secret_uses,
                                                   secrets_to_provide)


def _meta(name: str, namespace: str | None = "apps") -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def _pod(**extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": "app", "image": "x/app:1"}], **extra}


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web"),
    "spec": {"template": {"spec": _pod(
        containers=[{"name": "app", "image": "x/app:1",
                     "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "openai"}}},
                             {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "b"}}},
                             {"name": "C", "value": "plain"}],
                     "envFrom": [{"secretRef": {"name": "bulk"}}, {"configMapRef": {"name": "cm"}}]}],
        initContainers=[{"name": "init", "image": "x/init:1",
                         "env": [{"name": "D", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "anthropic",
                                                                              "optional": True}}}]}],
        imagePullSecrets=[{"name": "registry"}],
        volumes=[{"name": "files", "secret": {"secretName": "dsn", "items": [{"key": "dsn", "path": "dsn"}]}},
                 {"name": "whole", "secret": {"secretName": "certs"}},
                 {"name": "proj", "projected": {"sources": [
                     {"secret": {"name": "token", "items": [{"key": "t", "path": "t"}]}},
                     {"configMap": {"name": "cm"}}]}},
                 {"name": "tmp", "emptyDir": {}}])}},
}


def _uses(objects: list[dict[str, Any]]) -> set[tuple[str, str, tuple[str, ...], str, bool]]:
    return {(use.namespace, use.name, use.keys, use.reader, use.optional) for use in secret_uses(objects)}


def test_every_kind_of_pod_secret_reference_is_found() -> None:
    reader = "Deployment apps/web"
    assert _uses([DEPLOYMENT]) == {
        ("apps", "llm", ("openai",), reader, False),
        ("apps", "llm", ("anthropic",), reader, True),
        ("apps", "bulk", (), reader, False),
        ("apps", "registry", (".dockerconfigjson",), reader, False),
        ("apps", "dsn", ("dsn",), reader, False),
        ("apps", "certs", (), reader, False),
        ("apps", "token", ("t",), reader, False),
    }


def test_pod_templates_of_every_workload_kind_and_of_custom_resources_are_scanned() -> None:
    ref = {"name": "app", "image": "x/app:1", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                                                  "key": "k"}}}]}
    objects = [
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta("nightly"),
         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [ref]}}}}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta("db"),
         "spec": {"template": {"spec": {"containers": [ref]}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": _meta("one"), "spec": {"containers": [ref]}},
        {"apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox", "metadata": _meta("box"),
         "spec": {"podTemplate": {"spec": {"containers": [ref]}}}},
        {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": _meta("jobs"),
         "spec": {"jobTargetRef": {"template": {"spec": {"containers": [ref]}}}}},
    ]
    assert {use.reader for use in secret_uses(objects)} == {
        "CronJob apps/nightly", "StatefulSet apps/db", "Pod apps/one", "Sandbox apps/box", "ScaledJob apps/jobs"}
    assert {(use.namespace, use.name, use.keys) for use in secret_uses(objects)} == {("apps", "s", ("k",))}


def test_keda_prometheus_operator_and_service_account_objects_read_secrets_in_their_namespace() -> None:
    objects = [
        {"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": _meta("kafka"),
         "spec": {"secretTargetRef": [{"parameter": "password", "name": "user", "key": "password"}]}},
        {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig", "metadata": _meta("routes",
                                                                                                         "mon"),
         "spec": {"receivers": [{"name": "r", "slackConfigs": [{"apiURL": {"name": "alerting", "key": "slack"}}],
                                 "webhookConfigs": [{"httpConfig": {"tlsConfig": {
                                     "ca": {"configMap": {"name": "ca-bundle", "key": "ca.crt"}}}}}]}],
                  "route": {"matchers": [{"name": "severity", "value": "critical"}]}}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": _meta("agents", "mon"),
         "spec": {"endpoints": [{"port": "http", "authorization": {"credentials": {"name": "scrape", "key": "t"}}}],
                  "selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}},
    ]
    objects += [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": _meta("rules", "mon"),
         "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0",
                                                      "labels": {"name": "not", "key": "a secret"}}]}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("puller"),
         "imagePullSecrets": [{"name": "registry"}]},
    ]
    assert {(use.namespace, use.name, use.keys, use.reader) for use in secret_uses(objects)} == {
        ("apps", "registry", (".dockerconfigjson",), "ServiceAccount apps/puller"),
        ("apps", "user", ("password",), "TriggerAuthentication apps/kafka"),
        ("mon", "alerting", ("slack",), "AlertmanagerConfig mon/routes"),
        ("mon", "scrape", ("t",), "ServiceMonitor mon/agents"),
    }


def test_operators_make_secrets_from_rendered_objects() -> None:
    objects = [
        {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaUser", "metadata": _meta("app-user", "kafka"),
         "spec": {"authentication": {"type": "scram-sha-512"}}},
        {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": _meta("events", "kafka"), "spec": {}},
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": _meta("state"),
         "spec": {"instances": 3}},
        {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": _meta("creds"),
         "spec": {"secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"}, "target": {"name": "made"}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web"), "spec": {}},
    ]
    made = {(secret.namespace, secret.name): secret.maker for secret in operator_made(objects)}
    assert set(made) == {("kafka", "app-user"), ("kafka", "events-cluster-ca-cert"),
                         ("kafka", "events-clients-ca-cert"), ("apps", "state-app"), ("apps", "made")}
    assert made[("kafka", "app-user")].startswith("KafkaUser kafka/app-user")
    assert made[("kafka", "events-cluster-ca-cert")].startswith("Kafka kafka/events")
    assert made[("apps", "state-app")].startswith("Cluster apps/state")
    assert made[("apps", "made")].startswith("ExternalSecret apps/creds")


def test_a_cloudnative_pg_cluster_given_its_app_secret_reads_it_instead_of_making_it() -> None:
    cluster = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": _meta("state"),
               "spec": {"enableSuperuserAccess": True,
                        "bootstrap": {"initdb": {"database": "d", "owner": "o", "secret": {"name": "owner-creds"}}}}}
    assert {(secret.namespace, secret.name) for secret in operator_made([cluster])} == {("apps", "state-superuser")}
    assert [(use.name, use.keys, use.reader) for use in secret_uses([cluster])] == [
        ("owner-creds", ("password", "username"), "Cluster apps/state")]


def test_the_user_is_asked_only_for_what_nothing_rendered_makes() -> None:
    user = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaUser", "metadata": _meta("web", "kafka"),
            "spec": {"authentication": {"type": "scram-sha-512"}}}
    cluster = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": _meta("state"), "spec": {}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web"), "spec": {"template": {
        "spec": _pod(volumes=[{"name": "k", "secret": {"secretName": "web", "items": [{"key": "password",
                                                                                      "path": "p"}]}},
                              {"name": "db", "secret": {"secretName": "state-app"}},
                              {"name": "m", "secret": {"secretName": "monitoring-ingest",
                                                       "items": [{"key": "token", "path": "t"}]}}],
                     containers=[{"name": "app", "image": "x/app:1", "env": [
                         {"name": "A", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "openai"}}},
                         {"name": "B", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "anthropic"}}}]}])}}}
    other = {**deployment, "metadata": _meta("api")}
    needed = secrets_to_provide([user, cluster, deployment, other], program_made=[("apps", "monitoring-ingest")])
    assert [(secret.namespace, secret.name) for secret in needed] == [("apps", "llm"), ("apps", "web")]
    llm, copy = needed
    assert llm.keys == ("anthropic", "openai") and not llm.whole and not llm.optional
    assert llm.readers == ("Deployment apps/api", "Deployment apps/web") and llm.copy_of is None
    # The KafkaUser's Secret is made in the users' namespace: the agent's namespace needs a copy of it.
    assert copy.keys == ("password",) and copy.copy_of == MadeSecret("kafka", "web", copy.copy_of.maker)
    assert copy.copy_of.maker.startswith("KafkaUser kafka/web")


def test_a_use_of_the_whole_secret_and_optional_uses_are_kept() -> None:
    uses = [SecretUse("apps", "bulk", (), "Deployment apps/a"),
            SecretUse("apps", "bulk", ("k",), "Deployment apps/b", optional=True)]
    deployment_a = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("a"), "spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": "i", "envFrom": [{"secretRef": {"name": "bulk"}}]}]}}}}
    deployment_b = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("b"), "spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": "i", "env": [
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "bulk", "key": "k", "optional": True}}}]}]}}}}
    assert sorted(secret_uses([deployment_a, deployment_b]), key=lambda use: use.reader) == uses
    [bulk] = secrets_to_provide([deployment_a, deployment_b], program_made=[])
    assert bulk.whole and bulk.keys == ("k",) and not bulk.optional
