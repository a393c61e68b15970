"""`soma bench consensus`: run the consensus benchmark (and optionally a Raft baseline)
on loopback and report throughput and latency.

The driver (`soma.bench.consensus_bench`) does the work; this module checks the arguments
before any process starts, shows progress on stderr so that `--json` leaves exactly one
JSON object on stdout, and turns the ways a run can fail into an `error:` line and an
exit status instead of a traceback: 2 for arguments, 1 for a run that failed, 130 for
Ctrl-C and 143 for SIGTERM (both only after the driver has stopped its validators).

The driver is imported inside the command, not at module level: it pulls in gRPC and the
whole consensus stack, which every other `soma` command would otherwise pay for on
startup.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import enum
import json
import signal
import textwrap
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from soma.cli.log_options import LogFormatOption, LogLevelOption, checked_log_settings
from soma.types.error import SomaError

if TYPE_CHECKING:
    from soma.bench.consensus_bench import ConsensusBenchConfig, LoadState

bench_app = typer.Typer(help="Benchmarks that run real validator processes.", no_args_is_help=True)

ProgressCallback = Callable[[str, float, "LoadState"], None]

#: Without a terminal, one progress line per system every this many seconds: enough to
#: see a run is alive in a CI log, few enough not to bury the result.
LINE_EVERY_S = 5.0
#: "Current" tps is measured over about this window: the committed count moves in whole
#: batches, so its last step is noisy, and the average since the start lags.
TPS_WINDOW_S = 2.0


class Baseline(enum.StrEnum):
    RAFT = "raft"
    RAFT_BATCHED = "raft-batched"


class _Throughput:
    """Transactions per second over the last `TPS_WINDOW_S` of one system's run."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, elapsed_s: float, committed: int) -> float:
        samples = self._samples
        samples.append((elapsed_s, committed))
        while len(samples) > 2 and elapsed_s - samples[1][0] >= TPS_WINDOW_S:
            samples.popleft()
        first_s, first_committed = samples[0]
        span = elapsed_s - first_s
        return (committed - first_committed) / span if span > 0 else 0.0


class _Reporter(abc.ABC):
    """Progress of a run, as the driver's callback. A context manager so that a display
    is taken down (and the terminal left clean) however the run ends."""

    def __init__(self, systems: list[str], validators: int, duration_s: float) -> None:
        self.systems = systems
        self.validators = validators
        self.duration_s = duration_s
        self.current: str | None = None
        self._throughput = _Throughput()

    def __enter__(self) -> _Reporter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, label: str, elapsed_s: float, state: LoadState) -> None:
        if label != self.current:
            self.current = label
            self._throughput = _Throughput()
            self.started(label)
        tps = self._throughput.add(elapsed_s, state.committed)
        self.update(label, elapsed_s, state, tps)

    def started(self, label: str) -> None:  # noqa: B027 (a hook; doing nothing is the default)
        """The first report of `label`: its processes are up and load has begun."""

    @abc.abstractmethod
    def update(self, label: str, elapsed_s: float, state: LoadState, tps: float) -> None:
        """Show `state` of `label` at `elapsed_s` (`tps`: over the last few seconds)."""


class _LineReporter(_Reporter):
    """For a stderr that is not a terminal (a log file, CI): plain lines, a few per
    system, since redrawing a display there would only pile up copies of it."""

    _next_line_s: float = LINE_EVERY_S

    def __enter__(self) -> _LineReporter:
        typer.echo(f"{self.systems[0]}: starting {self.validators} validators", err=True)
        return self

    def started(self, label: str) -> None:
        self._next_line_s = LINE_EVERY_S
        typer.echo(f"{label}: running for {self.duration_s:g} s", err=True)

    def update(self, label: str, elapsed_s: float, state: LoadState, tps: float) -> None:
        if elapsed_s < self._next_line_s:
            return
        self._next_line_s += LINE_EVERY_S
        typer.echo(
            f"{label}: {elapsed_s:.0f}/{self.duration_s:g} s, "
            f"{state.committed:,} transactions committed, {tps:,.0f} tps",
            err=True,
        )


class _LiveReporter(_Reporter):
    """For a terminal: one rich progress bar per system, redrawn in place."""

    def __init__(
        self, systems: list[str], validators: int, duration_s: float, console: Console
    ) -> None:
        super().__init__(systems, validators, duration_s)
        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.completed:>6.1f}/{task.total:g} s"),
            TextColumn("{task.fields[committed]:>12,} tx"),
            TextColumn("{task.fields[tps]:>10,.0f} tps"),
            TextColumn("{task.fields[status]}"),
            console=console,
            refresh_per_second=4,
        )
        self._tasks: dict[str, TaskID] = {}
        for i, label in enumerate(systems):
            status = f"starting {validators} validators" if i == 0 else "waiting"
            self._tasks[label] = self._progress.add_task(
                label, total=duration_s, committed=0, tps=0.0, status=status
            )

    def __enter__(self) -> _LiveReporter:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None and self.current is not None:
            self._progress.update(
                self._tasks[self.current], completed=self.duration_s, status="done"
            )
        self._progress.stop()

    def started(self, label: str) -> None:
        # The driver runs the systems one after another, so a new label means the ones
        # before it have finished.
        if label not in self._tasks:  # a system this command did not expect: show it too
            self.systems.append(label)
            self._tasks[label] = self._progress.add_task(
                label, total=self.duration_s, committed=0, tps=0.0, status=""
            )
        for earlier in self.systems[: self.systems.index(label)]:
            self._progress.update(self._tasks[earlier], completed=self.duration_s, status="done")

    def update(self, label: str, elapsed_s: float, state: LoadState, tps: float) -> None:
        status = "running"
        if state.failed_batches or state.refused:
            status = f"running, {state.failed_batches} batches failed, {state.refused:,} refused"
        self._progress.update(
            self._tasks[label],
            completed=min(elapsed_s, self.duration_s),
            committed=state.committed,
            tps=tps,
            status=status,
        )


async def _run(
    config: ConsensusBenchConfig,
    progress: ProgressCallback,
    baseline: str | None,
    terminated: list[bool],
) -> dict[str, Any]:
    """The driver, cancelled on SIGTERM as it is on Ctrl-C, so that its `finally` blocks
    stop the validator processes (they run in sessions of their own, so no signal sent to
    this process reaches them). `terminated` records that SIGTERM was the cause."""
    from soma.bench import consensus_bench as driver

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_sigterm() -> None:
        terminated.append(True)
        task.cancel()

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    try:
        return await driver.run_consensus_bench(config, progress=progress, baseline=baseline)
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def _run_system_bench(run: Coroutine[Any, Any, dict[str, Any]], nodes: str) -> dict[str, Any]:
    """Run a benchmark driver that starts node processes: a Ctrl-C is exit 130 once it
    stopped its `nodes`, a failed run one error line and exit 1."""
    from soma.utils.gc_tuning import tune_gc

    tune_gc()  # the load generator is a busy process too, like the nodes
    try:
        return asyncio.run(run)
    except KeyboardInterrupt:
        raise _fail(f"interrupted; the {nodes} were stopped", 130) from None
    except SomaError as e:
        raise _fail(str(e), 1) from None


def _fail(message: str, code: int) -> typer.Exit:
    """Print `message` as the `error:` line (any further lines indented under it)."""
    first, _, rest = message.strip().partition("\n")
    typer.echo(f"error: {first}", err=True)
    if rest.strip():
        typer.echo(textwrap.indent(rest.rstrip(), "  "), err=True)
    return typer.Exit(code=code)


def _ms(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _print_summary(result: dict[str, Any], baseline: str | None) -> None:
    """The figures a reader compares first, one row per system; `--json` has the rest."""
    table = Table(title="soma bench consensus")
    for column in ("system", "tps", "p50 ms", "p90 ms", "p99 ms", "commits", "rounds/s"):
        table.add_column(column, justify="left" if column == "system" else "right")
    rows: list[tuple[str, dict[str, Any]]] = [("soma", result)]
    if baseline is not None and isinstance(result.get("baseline"), dict):
        rows.append((baseline, result["baseline"]))
    for name, figures in rows:
        latency = figures.get("latency_ms") or {}
        rounds = figures.get("rounds_per_s")
        table.add_row(
            name,
            f"{figures.get('tps', 0):,}",
            _ms(latency.get("p50")),
            _ms(latency.get("p90")),
            _ms(latency.get("p99")),
            f"{figures.get('commits', 0):,}",
            _ms(rounds) if name == "soma" else "-",
        )
    console = Console(highlight=False)
    console.print(table)
    load = "closed loop" if result.get("rate") is None else f"{result['rate']:,} tx/s offered"
    console.print(
        f"{result.get('validators')} validators ({result.get('crashed', 0)} crashed), "
        f"{result.get('tx_size')}-byte transactions, {load}, {result.get('duration_s')} s",
        markup=False,
    )
    if result.get("ratio_vs_baseline") is not None:
        console.print(f"soma / {baseline}: {result['ratio_vs_baseline']}x tps", markup=False)


def _warn_about(result: dict[str, Any], baseline: str | None) -> None:
    """Point out on stderr (in both output modes) figures that are not what they seem: a
    run that committed nothing, or batches that failed (those in flight to validators
    `--crash` killed are counted apart, as they fail by design)."""
    for name, figures in (("soma", result), (baseline, result.get("baseline"))):
        if not isinstance(figures, dict):
            continue
        if not figures.get("committed_transactions"):
            typer.echo(f"warning: {name} committed no transactions", err=True)
        failed = int(figures.get("failed_batches") or 0)
        if failed:
            last = figures.get("last_error")
            typer.echo(
                f"warning: {name}: {failed} batches failed" + (f" (last: {last})" if last else ""),
                err=True,
            )


@bench_app.command("consensus")
def consensus(
    validators: Annotated[
        int, typer.Option("--validators", help="Committee size: one process per validator.")
    ] = 4,
    duration: Annotated[
        float,
        typer.Option("--duration", help="Seconds of load (the baseline runs as long again)."),
    ] = 30.0,
    tx_size: Annotated[int, typer.Option("--tx-size", help="Bytes per transaction.")] = 512,
    rate: Annotated[
        int | None,
        typer.Option(
            "--rate",
            help="Offered load in transactions/s over all validators. Without it, a closed "
            "loop: a fixed number of batches in flight, as fast as consensus commits them.",
        ),
    ] = None,
    crash: Annotated[
        int,
        typer.Option("--crash", help="Validators killed (SIGKILL) 5 s in; at most f."),
    ] = 0,
    latency_ms: Annotated[
        float,
        typer.Option(
            "--latency-ms",
            help="One-way latency added to every link between validators (ms); the report "
            "then gives latency in units of it (latency_delta).",
        ),
    ] = 0.0,
    baseline: Annotated[
        Baseline | None,
        typer.Option(
            "--baseline",
            help="Then run Raft (pysyncobj) under the same load: raft, one log entry per "
            "transaction; raft-batched, one per batch.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run VALIDATORS consensus processes on loopback under load and report throughput,
    commit latency and round rate; progress goes to stderr."""
    from soma.bench import consensus_bench as driver

    try:
        config = driver.ConsensusBenchConfig(
            validators=validators,
            duration_s=duration,
            tx_size=tx_size,
            rate=rate,
            crash=crash,
            latency_ms=latency_ms,
        )
    except driver.BenchConfigError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from None
    systems = ["soma"] if baseline is None else ["soma", baseline.value]
    stderr = Console(stderr=True)
    reporter: _Reporter
    if stderr.is_terminal and not stderr.is_dumb_terminal:
        reporter = _LiveReporter(systems, validators, duration, stderr)
    else:
        reporter = _LineReporter(systems, validators, duration)
    terminated: list[bool] = []
    try:
        with reporter:
            result = asyncio.run(
                _run(config, reporter, None if baseline is None else baseline.value, terminated)
            )
    except KeyboardInterrupt:
        # asyncio.run turned Ctrl-C into a cancellation of the driver and waited for it,
        # so its finally blocks have already stopped the validators.
        raise _fail("interrupted; the validators were stopped", 130) from None
    except asyncio.CancelledError:
        if not terminated:
            raise
        raise _fail("terminated; the validators were stopped", 143) from None
    except TimeoutError as e:
        # Before OSError, of which it is a subclass: a bare timeout has no strerror.
        raise _fail(f"timed out{f': {e}' if str(e) else ''}", 1) from None
    except RuntimeError as e:
        raise _fail(str(e) or type(e).__name__, 1) from None
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise _fail(f"{e.strerror or e}{where}", 1) from None

    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_summary(result, None if baseline is None else baseline.value)
    _warn_about(result, None if baseline is None else baseline.value)


@bench_app.command("transfers")
def transfers(
    validators: Annotated[int, typer.Option("--validators", help="Validator processes.")] = 4,
    duration: Annotated[float, typer.Option("--duration", help="Seconds of load.")] = 30.0,
    accounts: Annotated[
        int, typer.Option("--accounts", help="Accounts sending transfers in a closed loop.")
    ] = 1_000,
    log_level: LogLevelOption = "WARNING",
    log_format: LogFormatOption = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Coin transfers through a local network of VALIDATORS processes: throughput,
    submit-to-certificate latency and failures; progress goes to stderr."""
    from soma.bench import transfers_bench as driver

    try:
        config = driver.TransfersBenchConfig(
            validators, duration, accounts, checked_log_settings(log_level, log_format)
        )
    except driver.TransfersBenchError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from None
    console = Console(stderr=True)

    def progress(figures: dict[str, object]) -> None:
        console.print(
            f"[bold]soma[/bold] {figures['elapsed_s']} s: {figures['done']} transfers, "
            f"{figures['failed']} failed",
            highlight=False,
        )

    result = _run_system_bench(driver.run_transfers_bench(config, progress), "validators")
    if as_json:
        typer.echo(json.dumps(result))
    else:
        latency = result["latency_ms"]
        typer.echo(
            f"{result['tps']} transfers/s, p50 {latency['p50']} ms, p90 {latency['p90']} ms, "
            f"p99 {latency['p99']} ms, {result['failed']} failed"
        )


@bench_app.command("sync")
def sync(
    validators: Annotated[int, typer.Option("--validators", help="Validator processes.")] = 4,
    transfers: Annotated[
        int, typer.Option("--transfers", help="Transfers certified before the load stops.")
    ] = 20_000,
    accounts: Annotated[
        int, typer.Option("--accounts", help="Accounts sending transfers in a closed loop.")
    ] = 1_000,
    log_level: LogLevelOption = "WARNING",
    log_format: LogFormatOption = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """How fast a fresh fullnode catches up: a network runs TRANSFERS transfers, then a
    new fullnode syncs it from genesis; sync and network rates and their ratio (progress
    goes to stderr)."""
    from soma.bench import sync_bench as driver

    try:
        config = driver.SyncBenchConfig(
            validators, transfers, accounts, checked_log_settings(log_level, log_format)
        )
    except driver.SyncBenchError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from None
    console = Console(stderr=True)

    def progress(phase: str, figures: dict[str, object]) -> None:
        if phase == "load":
            line = f"load {figures['elapsed_s']} s: {figures['done']} of {transfers} transfers"
        elif phase == "settle":
            line = f"network certifying: {figures['certified']} of {figures['target']} commits"
        else:
            line = (
                f"sync {figures['elapsed_s']} s: {figures['synced']} of {figures['target']} commits"
            )
        console.print(f"[bold]soma[/bold] {line}", highlight=False)

    result = _run_system_bench(driver.run_sync_bench(config, progress), "nodes")
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{result['transactions']} transactions in {result['commits']} commits synced in "
            f"{result['seconds']} s: {result['sync_tps']} tx/s, the network made them at "
            f"{result['network_tps']} tx/s (ratio {result['ratio']})"
        )


@bench_app.command("chaos")
def chaos(
    validators: Annotated[int, typer.Option("--validators", help="Validator processes.")] = 4,
    duration: Annotated[float, typer.Option("--duration", help="Seconds of chaos.")] = 300.0,
    kill_every: Annotated[
        float, typer.Option("--kill-every", help="Seconds up between a restart and the next kill.")
    ] = 1.0,
    accounts: Annotated[
        int, typer.Option("--accounts", help="Accounts sending transfers in a closed loop.")
    ] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Which validators are killed.")] = 1,
    log_level: LogLevelOption = "WARNING",
    log_format: LogFormatOption = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A random validator SIGKILLed and restarted every KILL_EVERY seconds under a stream
    of transfers; then: transfers lost or failed, state roots, equivocations, supply.
    Exits 1 if any check fails."""
    from soma.bench import chaos_bench as driver

    try:
        config = driver.ChaosBenchConfig(
            validators,
            duration,
            kill_every,
            accounts,
            seed,
            checked_log_settings(log_level, log_format),
        )
    except driver.ChaosBenchError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from None
    console = Console(stderr=True)

    def progress(figures: dict[str, object]) -> None:
        console.print(
            f"[bold]soma[/bold] chaos {figures['elapsed_s']} s: {figures['kills']} kills, "
            f"{figures['succeeded']} transfers, {figures['failed']} failed",
            highlight=False,
        )

    result = _run_system_bench(driver.run_chaos_bench(config, progress), "validators")
    healthy = (
        result["lost"] == 0
        and result["failed"] == 0
        and result["state_roots_agree"]
        and result["equivocations"] == 0
        and result["supply_conserved"]
    )
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{result['kills']} kills in {result['duration_s']} s; {result['transfers']} "
            f"transfers ({result['tps']}/s), {result['failed']} failed, {result['lost']} lost; "
            f"state roots {'agree' if result['state_roots_agree'] else 'DIFFER'}; "
            f"{result['equivocations']} equivocations; supply "
            f"{'conserved' if result['supply_conserved'] else 'NOT conserved'}"
        )
    if not healthy:
        raise typer.Exit(code=1)


@bench_app.command("epochs")
def epochs(
    duration: Annotated[float, typer.Option("--duration", help="Seconds of load.")] = 60.0,
    epoch_ms: Annotated[
        int, typer.Option("--epoch-ms", help="Length of the network's epochs, in milliseconds.")
    ] = 5_000,
    senders: Annotated[
        int, typer.Option("--senders", help="Accounts sending transfers in a closed loop.")
    ] = 4,
    log_level: LogLevelOption = "WARNING",
    log_format: LogFormatOption = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """How much longer than the median a transfer waits when an epoch change falls in
    it: a local network with EPOCH_MS epochs, SENDERS accounts sending transfers through
    its API. Missing the target is reported, not an error; exits 1 if any transfer
    failed (progress goes to stderr)."""
    from soma.bench import epochs_bench as driver

    try:
        config = driver.EpochsBenchConfig(
            duration, epoch_ms, senders, checked_log_settings(log_level, log_format)
        )
    except driver.EpochsBenchError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from None
    console = Console(stderr=True)

    def progress(figures: dict[str, object]) -> None:
        console.print(
            f"[bold]soma[/bold] epochs {figures['elapsed_s']} s: epoch {figures['epoch']}, "
            f"{figures['transfers']} transfers, {figures['failed']} failed",
            highlight=False,
        )

    result = _run_system_bench(driver.run_epochs_bench(config, progress), "nodes")
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_epochs(result)
    if not result["boundary_transfers"]:
        typer.echo(
            "warning: no transfer spanned an epoch change, so no pause was measured "
            "(a longer --duration or a shorter --epoch-ms)",
            err=True,
        )
    if result["nodes_exited"]:
        typer.echo(
            f"warning: nodes exited during the run: {', '.join(result['nodes_exited'])}", err=True
        )
    if result["failed"]:
        typer.echo(f"error: {result['failed']} transfers failed:", err=True)
        for failure in result["failures"]:
            typer.echo(
                f"  sender {failure['sender']} at {failure['at_s']} s: {failure['outcome']}",
                err=True,
            )
        if result["failed"] > len(result["failures"]):
            typer.echo(f"  and {result['failed'] - len(result['failures'])} more", err=True)
        raise typer.Exit(code=1)


def _print_epochs(result: dict[str, Any]) -> None:
    """Latency of all transfers and of those an epoch change fell in, then the pause."""
    table = Table(title="soma bench epochs")
    for column in ("transfers", "count", "median ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "transfers" else "right")
    table.add_row(
        "all",
        f"{result['transfers']:,}",
        _whole_ms(result["median_ms"]),
        _whole_ms(result["p99_ms"]),
        _whole_ms(result["max_ms"]),
    )
    table.add_row(
        "spanning an epoch change",
        f"{result['boundary_transfers']:,}",
        _whole_ms(result["boundary_median_ms"]),
        _whole_ms(result["boundary_p99_ms"]),
        _whole_ms(result["boundary_max_ms"]),
    )
    Console(highlight=False).print(table)
    # Plain lines, not rich's: a terminal's width must not break a figure across lines.
    typer.echo(
        f"{result['epoch_changes']} epoch changes in {result['duration_s']:g} s "
        f"({result['epoch_ms']} ms epochs, {result['senders']} senders), "
        f"{result['failed']} failed"
    )
    verdict = "met" if result["met"] else "missed"
    typer.echo(
        f"pause over median: {_whole_ms(result['pause_over_median_ms'])} ms "
        f"(target {result['target_ms']} ms: {verdict})"
    )


def _whole_ms(value: float | None) -> str:
    """Milliseconds to the millisecond: the pause is judged in seconds, and a column of
    figures reads best with the same number of decimals."""
    return "-" if value is None else f"{value:,.0f}"
