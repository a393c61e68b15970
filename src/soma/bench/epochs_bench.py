"""`soma bench epochs`: how much longer a transfer waits when an epoch change falls in it.

Issue 15 asks that during an epoch change under load no transfer wait more than 2 s
longer than the median. The pause is the thing to measure, so this runs what a user
runs: a fresh local network laid out as `soma start --epoch-duration-ms MS` lays it out
(four validators and a fullnode serving the HTTP API, as `soma node` processes on
loopback) in a temporary directory, and funded accounts sending transfers in a closed
loop through the API with the async SDK, which carries a transfer refused by the
validators' switch over to the new epoch (`Api.execute`), as any SDK user's would be.

Each transfer is timed from before its coin lookup to its certified result (what the
caller waits for), and the fullnode's epoch is read just before and just after it: a
transfer whose two readings differ spans a boundary. The fullnode's epoch is the one
the API's users see; a watcher reads it every `WATCH_EVERY_S` as well, so the report
says when each change was seen even when no transfer happened to span it.

The figure the target is about is `pause_over_median_ms`: the slowest boundary-spanning
transfer minus the median of all. It is a measurement, not a test: the CLI exits 0 when
the target is missed and 1 only when a transfer failed, which no epoch change may cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soma.bench.stats import LatencyRecorder
from soma.node.layout import FULLNODE_CONFIG, KEYSTORE
from soma.node.local_network import MAX_ACCOUNTS, create_local_network
from soma.node.start import DEFAULT_VALIDATORS, QUIET_LOGS, LocalNetworkRunner
from soma.sdk import AsyncClient
from soma.sdk.errors import ApiError
from soma.types.base import SomaAddress
from soma.types.config import load_keystore, load_node_config
from soma.types.crypto import AccountKeyPair
from soma.types.error import SomaError
from soma.utils.log_setup import LogSettings


class EpochsBenchError(SomaError):
    code = "BENCH_INVALID_ARGUMENT"


#: Issue 15's bound on how much longer than the median a transfer may wait at an epoch
#: change.
TARGET_MS = 2_000
#: How often the watcher reads the fullnode's epoch: fine enough to place each change
#: within a fraction of a transfer's time, light enough not to load the fullnode.
WATCH_EVERY_S = 0.2
#: After the load stops: how long transfers in flight are waited for (the SDK's own
#: timeout is shorter, so one that is still out by then never got an answer).
SETTLE_S = 120.0
#: How often the driver reports progress.
PROGRESS_EVERY_S = 5.0
#: Failures listed in the report (all are counted).
FAILURES_LISTED = 20
#: Shorter epochs than this would leave little of an epoch that is not its change.
MIN_EPOCH_MS = 1_000


@dataclasses.dataclass(frozen=True)
class EpochsBenchConfig:
    duration_s: float = 60.0
    epoch_ms: int = 5_000
    senders: int = 4
    #: How the nodes log (their files in the network's logs/): quiet by default, so
    #: logging does not weigh on what is measured.
    log_settings: LogSettings = QUIET_LOGS

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= 24 * 3600:
            raise EpochsBenchError("--duration must be above 0 and at most a day")
        if not MIN_EPOCH_MS <= self.epoch_ms <= 24 * 3600 * 1000:
            raise EpochsBenchError(f"--epoch-ms must be {MIN_EPOCH_MS} to 86400000")
        if not 1 <= self.senders < MAX_ACCOUNTS:
            raise EpochsBenchError(f"--senders must be 1 to {MAX_ACCOUNTS - 1}")


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One transfer as its sender saw it; times are seconds since the load began."""

    sender: int
    started_s: float
    ended_s: float
    #: "success" or "failure" (the certified result), else the SDK's error.
    outcome: str
    epoch_before: int | None
    epoch_after: int | None

    @property
    def latency_ms(self) -> float:
        return (self.ended_s - self.started_s) * 1000

    @property
    def succeeded(self) -> bool:
        return self.outcome == "success"

    @property
    def spans_boundary(self) -> bool:
        """The fullnode's epoch moved while the transfer was out (an unreadable epoch
        counts as no move: the report then says how many readings failed)."""
        return (
            self.epoch_before is not None
            and self.epoch_after is not None
            and self.epoch_before != self.epoch_after
        )


@dataclasses.dataclass
class _Run:
    """What the senders and the watcher record, shared while the load runs."""

    start: float = dataclasses.field(default_factory=time.monotonic)
    transfers: list[Transfer] = dataclasses.field(default_factory=list)
    #: (seconds since the load began, epoch) each time the watcher saw a new epoch; the
    #: first entry is the epoch the load began in.
    epochs_seen: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    unreadable_epochs: int = 0

    def now(self) -> float:
        return time.monotonic() - self.start


async def run_epochs_bench(
    config: EpochsBenchConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Start the network, run the load for `config.duration_s`, stop the network; the
    report (`summarize`), with any node that exited during the run."""
    with tempfile.TemporaryDirectory(prefix="soma-epochs-") as tmp:
        root = Path(tmp)
        # One account more than senders: the recipient, which never sends, so that no
        # sender's coins are touched by anyone else.
        create_local_network(
            root,
            validators=DEFAULT_VALIDATORS,
            accounts=config.senders + 1,
            epoch_duration_ms=config.epoch_ms,
        )
        keys = load_keystore(root / KEYSTORE)
        api_url = f"http://{load_node_config(root / FULLNODE_CONFIG).api_address}"
        runner = LocalNetworkRunner(root, DEFAULT_VALIDATORS, log_settings=config.log_settings)
        try:
            await runner.start_validators()
            await runner.start_fullnode()
            async with AsyncClient(api_url) as client:
                run = await _drive(config, client, keys, progress)
            exited = runner.dead()
        finally:
            await runner.stop()
    report = summarize(run.transfers, run.epochs_seen, run.unreadable_epochs)
    return {
        "validators": DEFAULT_VALIDATORS,
        "senders": config.senders,
        "epoch_ms": config.epoch_ms,
        "duration_s": config.duration_s,
        **report,
        "nodes_exited": exited,
    }


async def _drive(
    config: EpochsBenchConfig,
    client: AsyncClient,
    keys: list[AccountKeyPair],
    progress: Callable[[dict[str, Any]], None] | None,
) -> _Run:
    run = _Run()
    stop = asyncio.Event()
    to = keys[-1].public_key.to_address()
    watcher = asyncio.ensure_future(_watch(client, run, stop))
    senders = [
        asyncio.ensure_future(_send(client, i, keys[i], to, run, stop))
        for i in range(config.senders)
    ]
    try:
        deadline = run.start + config.duration_s
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(PROGRESS_EVERY_S, left))
            if progress is not None:
                progress(_progress(run))
        stop.set()
        _, pending = await asyncio.wait(senders, timeout=SETTLE_S)
        for i in sorted(senders.index(task) for task in pending):
            # Out since before the end and never answered: a failure like any other.
            run.transfers.append(Transfer(i, config.duration_s, run.now(), "no answer", None, None))
    finally:
        stop.set()
        for task in [*senders, watcher]:
            task.cancel()
        await asyncio.gather(*senders, watcher, return_exceptions=True)
    return run


def _progress(run: _Run) -> dict[str, Any]:
    return {
        "elapsed_s": round(run.now(), 1),
        "transfers": len(run.transfers),
        "failed": sum(1 for t in run.transfers if not t.succeeded),
        "epoch": run.epochs_seen[-1][1] if run.epochs_seen else None,
    }


async def _epoch(client: AsyncClient, run: _Run) -> int | None:
    try:
        return int((await client.status())["epoch"])
    except (ApiError, KeyError, TypeError, ValueError):
        run.unreadable_epochs += 1
        return None


async def _send(
    client: AsyncClient,
    index: int,
    key: AccountKeyPair,
    to: SomaAddress,
    run: _Run,
    stop: asyncio.Event,
) -> None:
    """One sender's closed loop: a transfer of 1 to the recipient, the next as soon as
    it is answered."""
    while not stop.is_set():
        before = await _epoch(client, run)
        started = run.now()
        try:
            outcome = str((await client.transfer(key, to, 1)).get("status"))
        except ApiError as e:
            outcome = f"{e.api_code}: {e}"
        ended = run.now()
        after = await _epoch(client, run)
        run.transfers.append(Transfer(index, started, ended, outcome, before, after))


async def _watch(client: AsyncClient, run: _Run, stop: asyncio.Event) -> None:
    """Note when the fullnode's epoch changes."""
    while not stop.is_set():
        epoch = await _epoch(client, run)
        if epoch is not None and (not run.epochs_seen or epoch != run.epochs_seen[-1][1]):
            run.epochs_seen.append((round(run.now(), 2), epoch))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_EVERY_S)


def _figures(latencies: list[float]) -> tuple[float | None, float | None, float | None]:
    recorder = LatencyRecorder()
    for latency in latencies:
        recorder.add(latency)
    return recorder.percentile(50), recorder.percentile(99), recorder.percentile(100)


def summarize(
    transfers: list[Transfer], epochs_seen: list[tuple[float, int]], unreadable_epochs: int = 0
) -> dict[str, Any]:
    """The report: latency of all successful transfers and of those that spanned an
    epoch boundary, and how much longer the slowest of the latter waited than the median
    of all (None, and `met` False, when no transfer spanned one: nothing was measured)."""
    done = [t for t in transfers if t.succeeded]
    spanning = [t for t in done if t.spans_boundary]
    median, p99, worst = _figures([t.latency_ms for t in done])
    b_median, b_p99, b_worst = _figures([t.latency_ms for t in spanning])
    pause = None if b_worst is None or median is None else round(b_worst - median, 1)
    # Epochs are consecutive, so the changes are the distance between the first and the
    # last epoch anyone saw (the watcher, or a sender's reading).
    epochs = [e for _, e in epochs_seen] + [
        e for t in transfers for e in (t.epoch_before, t.epoch_after) if e is not None
    ]
    failures = [t for t in transfers if not t.succeeded]
    return {
        "transfers": len(transfers),
        "failed": len(failures),
        "failures": [
            {"sender": t.sender, "at_s": round(t.started_s, 2), "outcome": t.outcome}
            for t in failures[:FAILURES_LISTED]
        ],
        "epoch_changes": max(epochs) - min(epochs) if epochs else 0,
        "epochs_seen_at_s": [{"at_s": at, "epoch": epoch} for at, epoch in epochs_seen],
        "unreadable_epochs": unreadable_epochs,
        "median_ms": median,
        "p99_ms": p99,
        "max_ms": worst,
        "boundary_transfers": len(spanning),
        "boundary_median_ms": b_median,
        "boundary_p99_ms": b_p99,
        "boundary_max_ms": b_worst,
        "boundary_spans": [
            {
                "at_s": round(t.started_s, 2),
                "epochs": [t.epoch_before, t.epoch_after],
                "latency_ms": round(t.latency_ms, 1),
            }
            for t in spanning
        ],
        "pause_over_median_ms": pause,
        "target_ms": TARGET_MS,
        "met": pause is not None and pause <= TARGET_MS,
    }
