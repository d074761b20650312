"""The circuit breaker opens after consecutive failures and lets one probe through later."""

from __future__ import annotations

import pytest

from app.observer.breaker import BreakerOpen, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_three_consecutive_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 30.0, clock)
    for _ in range(2):
        breaker.admit()
        breaker.failure("refused")
    assert breaker.state == "closed"
    breaker.admit()
    breaker.failure("refused")
    assert breaker.state == "open"
    with pytest.raises(BreakerOpen) as caught:
        breaker.admit()
    assert caught.value.retry_in == pytest.approx(30.0)
    assert caught.value.last_error == "refused"


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(3, 30.0, Clock())
    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        breaker.admit()
        breaker.failure("x") if outcome == "fail" else breaker.success()
    assert breaker.state == "closed"


def test_half_open_admits_one_probe_whose_result_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock)
    breaker.admit()
    breaker.failure("down")
    clock.now += 30.0
    assert breaker.state == "half_open"
    assert breaker.admit() is True  # the probe
    with pytest.raises(BreakerOpen):
        breaker.admit()  # everyone else still fails fast
    breaker.failure("still down", probe=True)
    assert breaker.state == "open"
    clock.now += 30.0
    assert breaker.admit() is True
    breaker.success(probe=True)
    assert breaker.state == "closed"
    assert breaker.admit() is False


def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.admit()
    breaker.failure("down")
    clock.now += 5.0
    probe = breaker.admit()
    breaker.release(probe)
    assert breaker.admit() is True


def test_a_late_failure_of_an_earlier_call_does_not_let_a_second_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.admit()
    breaker.admit()  # a second call, admitted while closed, still in flight
    breaker.failure("down")
    clock.now += 5.0
    assert breaker.admit() is True  # the probe
    breaker.failure("down too")  # the earlier call fails late
    clock.now += 5.0
    with pytest.raises(BreakerOpen):
        breaker.admit()  # the probe is still running: nobody else may go
    breaker.success(probe=True)
    assert breaker.state == "closed"


def test_failures_while_open_do_not_extend_the_open_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure("down")
    clock.now += 4.0
    breaker.failure("late")
    clock.now += 1.0
    assert breaker.state == "half_open"
    assert breaker.last_error == "late"


def test_a_failed_probe_reopens_even_below_the_threshold() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 5.0, clock)
    for _ in range(3):
        breaker.failure("down")
    clock.now += 5.0
    probe = breaker.admit()
    breaker.failure("still down", probe)
    assert breaker.state == "open"
