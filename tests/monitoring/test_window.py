"""The rolling window (monitoring/window.py) behaves as the bounded deque of points it replaced."""

from __future__ import annotations

import random
from collections import deque

import pytest

from monitoring.window import Window


@pytest.mark.parametrize("size", [1, 2, 3, 7, 120])
def test_a_window_keeps_the_newest_points_in_order_as_a_bounded_deque_does(size: int) -> None:
    rng = random.Random(size)
    window, reference = Window(size), deque(maxlen=size)  # type: ignore[var-annotated]
    timestamp = 0.0
    for _ in range(5 * size + 3):
        timestamp += rng.choice([0.0, 1.0, 2.5])
        if rng.random() < 0.1 and reference:  # out of order: refused, as before
            assert window.add(timestamp - 10.0, 9.0) is False
        value = rng.uniform(-5, 5)
        assert window.add(timestamp, value)
        reference.append((timestamp, value))
        assert list(window) == list(reference)
        assert len(window) == len(reference)
        assert window.newest() == reference[-1] and window.newest_value() == reference[-1][1]
        assert window.values() == [point[1] for point in reference]
        assert [window[index] for index in range(-len(reference), len(reference))] == \
            list(reference) + list(reference)
        for cutoff in (reference[0][0] - 1, reference[-1][0] - 3.0, reference[-1][0], reference[-1][0] + 1):
            expected = next((point for point in reference if point[0] >= cutoff), None)
            assert window.first_since(cutoff) == expected


def test_an_empty_window_is_falsy_and_has_no_newest_point() -> None:
    window = Window(3)
    assert not window and list(window) == [] and window.first_since(0.0) is None
    with pytest.raises(IndexError):
        window.newest()
    with pytest.raises(IndexError):
        window[0]
