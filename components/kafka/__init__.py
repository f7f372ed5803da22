"""Builders of Strimzi kinds: the system's KafkaTopics and each agent's KafkaUser."""
