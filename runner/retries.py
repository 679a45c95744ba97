"""Retrying a step's action: only idempotent kinds, bounded by attempts and by the run's deadline.

A side effect (click, fill, ...: ``missions.model.SIDE_EFFECT_KINDS``) is performed once: it is
never retried blindly. An idempotent action that fails transiently (``DriverError.transient``) is
tried again with exponential back-off (tenacity); ``on_retry`` is told of each retry before the
wait, so every retry becomes an exception record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from missions.model import IDEMPOTENT_KINDS
from runner.browser.driver import Driver, DriverError, StepOutcome

MAX_ATTEMPTS = 3

# (attempt number that failed, its exception) -> None
RetryListener = Callable[[int, BaseException | None], None]


def perform_with_retries(
    driver: Driver,
    kind: str,
    args: Mapping[str, Any],
    timeout: float,
    remaining: Callable[[], float],
    on_retry: RetryListener,
) -> tuple[StepOutcome, int]:
    """``driver.perform``, retried when idempotent; returns the outcome and the number of retries.

    ``remaining()`` is the run's time left: no retry starts after the deadline and each try's
    timeout is cut to it. A ``DriverError`` that ends the attempts carries ``retries``.
    """
    if kind not in IDEMPOTENT_KINDS:
        return driver.perform(kind, args, timeout), 0

    def before_sleep(rs: RetryCallState) -> None:
        on_retry(rs.attempt_number, rs.outcome.exception() if rs.outcome else None)

    retrying = Retrying(
        stop=stop_after_attempt(MAX_ATTEMPTS) | stop_after_delay(max(remaining(), 0.0)),
        wait=wait_exponential(multiplier=0.25, max=2.0),
        retry=retry_if_exception(lambda e: isinstance(e, DriverError) and e.transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    attempts = 0
    try:
        for attempt in retrying:
            with attempt:
                attempts += 1
                per_try = min(timeout, max(remaining(), 0.001))
                outcome: StepOutcome = driver.perform(kind, args, per_try)
    except DriverError as exc:
        exc.retries = attempts - 1  # type: ignore[attr-defined]
        raise
    return outcome, attempts - 1
