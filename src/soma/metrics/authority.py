"""Authority metrics: transactions submitted, executed and refused, execution time and
backlog, the epoch, and the commits executed and summarised.

Updated by `soma.authority.state.AuthorityState` (execution, commits) and the validator
service (submissions and their refusals).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Seconds to execute one transaction: a transfer takes well under a millisecond.
EXECUTION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)

SUBMITTED = Counter(
    "soma_authority_transactions_submitted",
    "User transactions this validator accepted and offered to consensus.",
    registry=None,
)
REFUSED = Counter(
    "soma_authority_transactions_refused",
    "User transactions refused at submission, by error code.",
    ["code"],
    registry=None,
)
EXECUTED = Counter(
    "soma_authority_transactions_executed",
    "Transactions executed here, by kind (user; system: commit prologues, epoch changes).",
    ["kind"],
    registry=None,
)
FAILED = Counter(
    "soma_authority_transactions_failed",
    "Executed transactions whose effects carry a failure status, by error code.",
    ["code"],
    registry=None,
)
EXECUTION_LATENCY = Histogram(
    "soma_authority_execution_latency_seconds",
    "Time to execute one transaction, from reading its inputs to its outputs written.",
    buckets=EXECUTION_BUCKETS,
    registry=None,
)
EXECUTION_BACKLOG = Gauge(
    "soma_authority_execution_backlog",
    "Transactions ordered (by consensus or state sync) and not executed yet.",
    registry=None,
)
EPOCH = Gauge("soma_authority_epoch", "The epoch this node executes.", registry=None)
HIGHEST_EXECUTED_COMMIT = Gauge(
    "soma_authority_highest_executed_commit",
    "The last commit (global index) whose transactions all executed here.",
    registry=None,
)
HIGHEST_CERTIFIED_COMMIT = Gauge(
    "soma_authority_highest_certified_commit",
    "The last commit (global index) whose summary this node holds certified.",
    registry=None,
)
COMMIT_ROUND = Gauge(
    "soma_authority_commit_round",
    "Leader round of the last commit handed to execution (from its prologue).",
    registry=None,
)
STATE_ROOT_UPDATES = Counter(
    "soma_authority_state_root_updates",
    "State root updates: one per commit whose transactions all executed here (its "
    "summary carries the root).",
    registry=None,
)
