"""The CPU budget: the calibration rule and the quota's period."""

from __future__ import annotations

import pytest

from bench.measure import budget

# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generator_rps", "rps_per_cpu", "cpus"),
    [
        (6_700, 11_000, 0.3),  # 0.305 rounds down to a whole step
        (13_000, 23_800, 0.25),  # 0.273
        (6_700, 23_800, 0.1),  # 0.141
        (1_000, 23_800, 0.1),  # 0.021: the kernel's 1 ms per 10 ms period is the floor
        (60_000, 10_000, 1.0),  # 3.0: never more than one CPU
        (4_000, 10_000, 0.2),  # exactly on a step stays there
    ],
)
def test_calibrated_budget_keeps_the_fastest_server_under_half_the_generator(
    generator_rps: float, rps_per_cpu: float, cpus: float
) -> None:
    assert budget.calibrated_cpus(generator_rps, rps_per_cpu) == cpus


def test_calibrated_budget_never_asks_more_than_the_margin_above_the_floor() -> None:
    for generator_rps in range(2_500, 30_000, 250):
        cpus = budget.calibrated_cpus(generator_rps, 23_800)
        assert cpus * 23_800 <= budget.CAPACITY_MARGIN * generator_rps or cpus == budget.BUDGET_MIN


@pytest.mark.parametrize(
    ("rps", "cpu_pct", "cores", "capacity"),
    [
        (6_000, 100.0, 1, 6_000),  # saturated: what it sent is its capacity
        (2_400, 37.5, 1, 6_400),  # a busy machine gave Locust a third of its core
        (9_000, 150.0, 2, 12_000),  # master and workers on two cores, three quarters busy
        (6_000, 104.0, 1, 6_000),  # sampling overshoot never lowers the capacity
        (6_000, None, 1, 6_000),  # no CPU reading: what it sent
    ],
)
def test_generator_capacity_scales_what_it_sent_to_busy_cores(
    rps: float, cpu_pct: float | None, cores: int, capacity: float
) -> None:
    assert budget.generator_capacity(rps, cpu_pct, cores) == pytest.approx(capacity)


def test_remote_workers_capacity_comes_from_their_own_cpu():
    # the master on this machine idles at 0.3% while its one remote worker is nearly saturated:
    # the master's CPU would have extrapolated almost a million requests/s
    summary = {"rps": 2_900.0, "generator_cpu_pct": 0.3, "workers_cpu_pct": 96.0}
    assert budget.measured_capacity(summary, cores=1, remote_workers=1) == pytest.approx(
        3020.8, 0.01
    )
    assert budget.measured_capacity(summary, cores=1) == pytest.approx(2_900 * 100 / 0.3)
    with pytest.raises(budget.BudgetUnavailable, match="reported no CPU use.*--server-cpus"):
        budget.measured_capacity({**summary, "workers_cpu_pct": None}, 1, remote_workers=1)


@pytest.mark.parametrize(
    ("cells", "fastest", "key"),
    [
        ([("poll", "app"), ("epoll", "app"), ("bjoern", "app"), ("granian", "app"),
          ("null", "app")], "bjoern", ("bjoern", "app")),
        ([("poll", "app"), ("threaded", "app"), ("granian", "app")], "granian", ("granian", "app")),
        ([("fork", "app"), ("waitress", "app"), ("null", "app")], "fork", ("fork", "app")),
        ([("waitress", "app"), ("null", "app")], "epoll", budget.DEFAULT_FASTEST),
        # the raw-app reference cells are faster than any framework-app cell, bjoern's included
        ([("epoll", "app"), ("epoll", "raw"), ("bjoern", "app")], "epoll (raw app)",
         ("epoll", "raw")),
        ([("poll", "app"), ("poll", "raw"), ("granian", "app")], "granian", ("granian", "app")),
    ],
)  # fmt: skip
def test_the_fastest_known_cell_of_the_run_sets_the_rate(cells: list, fastest: str, key) -> None:
    assert budget.fastest_rps_per_cpu(cells) == (fastest, budget.KNOWN_RPS_PER_CPU[key])


def test_a_run_with_raw_cells_gets_a_budget_those_cells_cannot_exhaust_the_generator_with() -> None:
    """The quick run's shape: Locust sent 8.8k req/s to the null server; the raw-app cells of
    epoll would ask for 0.3 × 29k = 8.7k at the framework's budget, so the budget halves."""
    label, rate = budget.fastest_rps_per_cpu([("epoll", "app"), ("epoll", "raw")])
    cpus = budget.calibrated_cpus(8_800, rate)
    assert cpus == 0.15
    assert cpus * rate <= budget.CAPACITY_MARGIN * 8_800


@pytest.mark.parametrize(
    ("cpus", "period_us"), [(None, 10_000), (1.0, 10_000), (0.5, 10_000), (0.3, 17_000),
                            (0.25, 20_000), (0.1, 50_000)],
)  # fmt: skip
def test_a_small_budget_gets_a_period_whose_quota_holds_a_whole_cfs_slice(cpus, period_us):
    period = budget.period_for(cpus)
    assert period >= 10_000 and period % 1000 == 0
    assert cpus is None or cpus * period >= budget.cfs_slice_us()
    if budget.cfs_slice_us() == budget.DEFAULT_CFS_SLICE_US:  # the kernel's default slice
        assert period == period_us


def test_the_cfs_slice_falls_back_to_the_kernel_default_when_unreadable(tmp_path):
    assert budget.cfs_slice_us(tmp_path / "missing") == budget.DEFAULT_CFS_SLICE_US
    (tmp_path / "slice").write_text("3000\n")
    assert budget.cfs_slice_us(tmp_path / "slice") == 3000
