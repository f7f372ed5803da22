"""The scrape schedule (monitoring/schedule.py): phases, fixed rate, jitter, overload, and the collector's use of it."""

from __future__ import annotations

import asyncio
from collections import Counter

from monitoring.collector import Collector
from monitoring.schedule import MAX_BATCH, Schedule
from monitoring.simulate import Simulator

from .conftest import make_settings


def run(schedule: Schedule[int], until: float, step: float = 0.01,
        alive: set[int] | None = None) -> list[tuple[float, int, float]]:
    """(time, member, lateness) of every pop, stepping a clock from 0 to `until`."""
    popped, now = [], 0.0
    while now < until:
        popped += [(now, member, late) for member, late in
                   schedule.pop_due(now, lambda member: alive is None or member in alive)]
        now = round(now + step, 6)
    return popped


def test_first_slots_spread_over_one_interval_then_every_member_once_per_interval() -> None:
    schedule: Schedule[int] = Schedule(interval=10.0, jitter=0.0, spread=True)
    firsts = [schedule.add(member, 0.0) for member in range(500)]
    assert all(0.0 <= first < 10.0 for first in firsts)
    assert min(firsts) < 1.0 and max(firsts) > 9.0  # spread, not bunched
    popped = run(schedule, 40.0)
    for start in (10.0, 20.0):  # steady state: each member exactly once per interval window
        window = Counter(member for when, member, _ in popped if start <= when < start + 10.0)
        assert set(window.values()) == {1} and len(window) == 500
    assert max(late for _, _, late in popped) < 0.01 + 1e-9


def test_with_jitter_each_window_still_holds_about_one_scrape_per_member() -> None:
    schedule: Schedule[int] = Schedule(interval=10.0, jitter=0.1, spread=True)
    for member in range(2000):
        schedule.add(member, 0.0)
    popped = run(schedule, 40.0)
    slots = sorted(when for when, member, _ in popped if member == 7)
    gaps = [later - earlier for earlier, later in zip(slots, slots[1:])]
    assert all(8.0 - 0.02 <= gap <= 12.0 + 0.02 for gap in gaps)  # +-10 % of the interval, both slots
    in_window = sum(1 for when, _, _ in popped if 10.0 <= when < 30.0)
    assert abs(in_window - 4000) < 4000 * 0.03


def test_without_spread_the_first_slot_is_now() -> None:
    schedule: Schedule[str] = Schedule(interval=5.0, jitter=0.0, spread=False)
    assert schedule.add("a", 100.0) == 100.0
    assert [member for member, _ in schedule.pop_due(100.0, lambda member: True)] == ["a"]
    assert schedule.next_due() == 105.0


def test_members_no_longer_alive_are_dropped_not_rescheduled() -> None:
    schedule: Schedule[int] = Schedule(interval=1.0, jitter=0.0, spread=False)
    for member in range(3):
        schedule.add(member, 0.0)
    popped = run(schedule, 3.0, alive={0, 2})
    assert {member for _, member, _ in popped} == {0, 2}
    assert len(schedule) == 2


def test_a_member_a_whole_interval_behind_runs_once_and_resumes_an_interval_later_without_a_burst() -> None:
    schedule: Schedule[int] = Schedule(interval=1.0, jitter=0.0, spread=False)
    schedule.add(1, 0.0)
    assert [late for _, late in schedule.pop_due(0.0, lambda member: True)] == [0.0]
    assert [late for _, late in schedule.pop_due(5.5, lambda member: True)] == [4.5]  # four slots missed
    assert schedule.next_due() == 6.5


def test_batches_are_at_most_a_hundredth_of_the_interval() -> None:
    assert Schedule(interval=15.0, jitter=0.0, spread=True).batch == MAX_BATCH
    assert Schedule(interval=0.5, jitter=0.0, spread=True).batch == 0.005


async def test_the_collector_scrapes_each_agent_on_schedule_and_stops_scraping_a_deregistered_one(
        simulator: tuple[Simulator, str]) -> None:
    _, simulator_url = simulator
    interval = 0.2
    collector = Collector(make_settings(collection_interval=interval), on_alert_change=lambda alert: None)
    for index in range(3):
        collector.register(f"agent-{index}", f"{simulator_url}/agents/agent-{index}/metrics", source="static")
    collector.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while min(state.scrapes for state in collector.agents.values()) < 3:
            assert loop.time() < deadline, "three scrapes of every agent not reached"
            await asyncio.sleep(0.05)
        assert all(state.failures == 0 for state in collector.agents.values())
        gone = collector.agents["agent-1"]
        await collector.deregister("agent-1")
        scrapes = gone.scrapes
        late = collector.register("agent-late", f"{simulator_url}/agents/agent-2/metrics", source="static")
        while late.scrapes < 3:
            assert loop.time() < deadline, "a registration while running was not scheduled"
            await asyncio.sleep(0.05)
        assert gone.scrapes == scrapes  # three intervals later, nothing more
        assert max(collector.stats.lags) < interval / 100 + 0.1  # the batch, plus a loaded machine's slack
    finally:
        await collector.stop()
    assert all(state.task is None for state in collector.agents.values())


def test_after_a_stall_each_member_is_due_once_per_call_whatever_the_jitter() -> None:
    schedule: Schedule[int] = Schedule(interval=1.0, jitter=0.5, spread=True)
    for member in range(200):
        schedule.add(member, 0.0)
    now = 0.0
    for stall in [0.7] * 30 + [0.9] * 30 + [5.0, 0.01, 40.0]:  # late by more than interval x (1 - jitter)
        now += stall
        popped = [member for member, _ in schedule.pop_due(now, lambda member: True)]
        assert len(popped) == len(set(popped))
