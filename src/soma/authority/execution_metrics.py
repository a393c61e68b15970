"""The authority's work as metrics (`soma.metrics.authority`): one call per executed
transaction, so execution itself stays free of them."""

from __future__ import annotations

import re

from soma.metrics import authority as metrics
from soma.types.effects import ExecutionFailure, TransactionEffects
from soma.types.transaction import SignedTransaction

_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")
# Children looked up once: this runs for every transaction.
_EXECUTED_USER = metrics.EXECUTED.labels("user")
_EXECUTED_SYSTEM = metrics.EXECUTED.labels("system")


def failure_code(effects: TransactionEffects) -> str | None:
    """The failure's code in the API's style (`InsufficientCoinBalance` ->
    `INSUFFICIENT_COIN_BALANCE`), None for a success."""
    status = effects.status
    if not isinstance(status, ExecutionFailure):
        return None
    return _WORD_START.sub("_", type(status.error).__name__).upper()


def record_execution(tx: SignedTransaction, effects: TransactionEffects, seconds: float) -> None:
    (_EXECUTED_SYSTEM if tx.data.kind.is_system() else _EXECUTED_USER).inc()
    metrics.EXECUTION_LATENCY.observe(seconds)
    code = failure_code(effects)
    if code is not None:
        metrics.FAILED.labels(code).inc()
