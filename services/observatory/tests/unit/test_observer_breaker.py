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
    breaker.failure("still down")
    assert breaker.state == "open"
    clock.now += 30.0
    assert breaker.admit() is True
    breaker.success()
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
