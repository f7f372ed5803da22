"""Kubernetes quantities: CPU and memory parsed, malformed or mistaken units rejected with a hint."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components.config.quantities import QuantityError, cpu_cores, memory_bytes, normalize_quantity, parse_quantity


@pytest.mark.parametrize("text, cores", [("250m", Decimal("0.25")), ("0.5", Decimal("0.5")), ("2", Decimal(2)),
                                         ("1500m", Decimal("1.5")), ("1e0", Decimal(1))])
def test_cpu_quantities(text: str, cores: Decimal) -> None:
    assert cpu_cores(text) == cores


@pytest.mark.parametrize("text, size", [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("500M", 500 * 10**6),
                                        ("1.5Gi", 3 * 2**29), ("1024", 1024)])
def test_memory_quantities(text: str, size: int) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize("text", ["abc", "1.2.3", "10 Mi", "Mi", "", "1GB", "1e3m"])
def test_malformed_quantities_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_cpu_in_memory_units_is_a_mistake() -> None:
    with pytest.raises(QuantityError, match="memory unit for CPU"):
        cpu_cores("1Gi")


def test_memory_in_millibytes_suggests_mebibytes() -> None:
    with pytest.raises(QuantityError, match="did you mean '512Mi'"):
        memory_bytes("512m")


@pytest.mark.parametrize("value", ["0", "0m", "-1"])
def test_non_positive_cpu_is_rejected(value: str) -> None:
    with pytest.raises(QuantityError, match="greater than zero"):
        cpu_cores(value)


def test_yaml_numbers_become_quantity_strings() -> None:
    assert normalize_quantity(2) == "2"
    assert normalize_quantity(0.5) == "0.5"
    assert normalize_quantity(" 250m ") == "250m"
    with pytest.raises(QuantityError):
        normalize_quantity(True)
