"""`soma client validator`: a validator's own transactions, from its node config.

Each command reads the validator's config (`--config`, as `soma validator new` wrote
it): its keys and addresses, and its account key (`account.key`, next to the config),
which signs. The network is the client's (`--dir`, `SOMA_DIR`); results print as
`soma client transfer`'s do, and a transaction that executed and failed (a stake below
the minimum, say) exits 1 with its reason.

- `join`: register the validator (keys, addresses, a name for it) and stake; it joins
  the committee at the next epoch change.
- `leave`: leave the committee at the next epoch change.
- `stake` / `unstake`: add to its stake from its coins, or take stake back as a coin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soma.cli.client import Context, print_result, run_action
from soma.cli.options import DirOption, JsonOption
from soma.cli.output import fail

if TYPE_CHECKING:
    from soma.node.candidate import Candidate

validator_app = typer.Typer(
    help="A validator's own transactions: join, leave, stake, unstake.", no_args_is_help=True
)

ConfigOption = Annotated[
    Path, typer.Option("--config", help="The validator's node config (its account key beside).")
]
AmountOption = Annotated[int, typer.Option("--amount", help="Amount of stake.")]


def _candidate(path: Path) -> Candidate:
    """The validator of `path`, or a one-line usage error (status 2)."""
    from soma.node.candidate import load_candidate
    from soma.types.error import SomaError

    try:
        return load_candidate(path.expanduser())
    except SomaError as e:
        fail(e.message, code=2, error_code=e.code)


def _amount(amount: int, flag: str) -> int:
    if not 0 < amount < 2**64:
        fail(f"{flag} must be a positive amount below 2^64", code=2, error_code="INVALID_AMOUNT")
    return amount


def _send(ctx: Context, candidate: Candidate, call: Any) -> None:
    """Run `call(account)` holding the account's sender lock, and print its result."""
    from soma.cli import client_locks

    account = candidate.account
    with client_locks.sender(ctx.root, account.public_key.to_address().to_hex()):
        print_result(ctx, call(account))


@validator_app.command("join")
def join(
    config: ConfigOption,
    stake: Annotated[
        int | None,
        typer.Option("--stake", help="Stake to join with (default: the minimum)."),
    ] = None,
    hostname: Annotated[
        str | None,
        typer.Option("--hostname", help="The validator's name (default: its directory's)."),
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask to join the committee from the next epoch, staking from the account."""
    if stake is not None:
        _amount(stake, "--stake")
    candidate = _candidate(config)
    node = candidate.config
    if node.consensus_address is None or node.p2p_address is None:
        fail(
            f"{node.path}: a validator needs consensus_address and p2p_address",
            code=2,
            error_code="INVALID_CONFIG",
        )

    def act(ctx: Context) -> None:
        from soma.sdk import ApiError, registration
        from soma.sdk.wire import int_field

        name = hostname or candidate.default_hostname
        taken = _hostnames(ctx)
        if name in taken:
            raise ApiError(
                "HOSTNAME_TAKEN",
                f"a validator is already named {name!r}: choose another with --hostname",
            )
        amount = stake
        if amount is None:
            amount = int_field(ctx.client.status(), "min_validator_stake", "/status")
        assert node.consensus_address is not None and node.p2p_address is not None
        signed = registration(
            candidate.account.public_key.to_address(),
            candidate.authority,
            node.keys.protocol,
            node.keys.network,
            name,
            node.network_address,
            node.consensus_address,
            node.p2p_address,
        )
        _send(ctx, candidate, lambda key: ctx.client.join_validator(key, signed, amount))

    run_action(directory, as_json, act)


def _hostnames(ctx: Context) -> set[str]:
    """The names of the network's validators, in the committee or joining it, read
    from the system state object (its JSON lists both); an answer of another shape
    (another server version) names none, and the check is skipped."""
    from soma.types.system_state import SYSTEM_STATE_OBJECT_ID

    found = ctx.client.get_object(SYSTEM_STATE_OBJECT_ID).get("data")
    validators = found.get("validators") if isinstance(found, dict) else None
    names = set()
    for group in ("active", "pending_active"):
        entries = validators.get(group) if isinstance(validators, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            metadata = entry.get("metadata") if isinstance(entry, dict) else None
            name = metadata.get("hostname") if isinstance(metadata, dict) else None
            if isinstance(name, str):
                names.add(name)
    return names


@validator_app.command("leave")
def leave(config: ConfigOption, directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Leave the committee at the next epoch change."""
    candidate = _candidate(config)

    def act(ctx: Context) -> None:
        _send(ctx, candidate, ctx.client.leave_validator)

    run_action(directory, as_json, act)


@validator_app.command("stake")
def add_stake(
    config: ConfigOption,
    amount: AmountOption,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add to the validator's stake (from the next epoch), from its account's coins."""
    _change_stake(config, amount, directory, as_json, withdraw=False)


@validator_app.command("unstake")
def unstake(
    config: ConfigOption,
    amount: AmountOption,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take stake back (from the next epoch), paid at once as a new coin."""
    _change_stake(config, amount, directory, as_json, withdraw=True)


def _change_stake(
    config: Path, amount: int, directory: Path | None, as_json: bool, *, withdraw: bool
) -> None:
    value = _amount(amount, "--amount")
    candidate = _candidate(config)

    def act(ctx: Context) -> None:
        change = ctx.client.withdraw_stake if withdraw else ctx.client.add_stake
        _send(ctx, candidate, lambda key: change(key, value))

    run_action(directory, as_json, act)
