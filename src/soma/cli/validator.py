"""`soma validator new`: a candidate validator for a running local network.

It writes the candidate's files (`soma.node.candidate`), adds the candidate's account
to the network's keystore (so `soma client` can sign for it), and funds that account
through the network's faucet with enough to join: the minimum validator stake and ten
fees (a join's gas budget), asking for as many grants as that takes. The network must
be running (its API answers the stake and fee to fund, and the faucet); nothing is
written otherwise.

`soma client validator join --config <config>` then asks to join the committee.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soma.cli.client import Context, add_to_keystore, check_executed, run_action
from soma.cli.options import DirOption, JsonOption
from soma.cli.output import fail

validator_app = typer.Typer(
    help="Candidate validators for an existing network.", no_args_is_help=True
)

#: A join's gas budget, in fees, that funding leaves room for beside the stake.
FUNDING_FEES = 10
#: Most faucet grants asked for one candidate (a network whose minimum stake is this
#: many grants away is funded by hand).
MAX_GRANTS = 100


@validator_app.command("new")
def new(
    out: Annotated[Path, typer.Option("--out", help="New (or empty) directory for its files.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a candidate validator of the network (fresh keys, free ports, the
    network's validators as seed peers, a funded account in the keystore); run it
    with `soma node --config <config>`, join with `soma client validator join`."""
    target = out.expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        fail(
            f"--out {target} is not empty: choose a new or empty directory",
            code=2,
            error_code="INVALID_ARGUMENT",
        )

    def act(ctx: Context) -> None:
        from soma.cli import client_locks
        from soma.node.candidate import write_candidate
        from soma.sdk.wire import int_field

        status = ctx.client.status()  # the network runs: there is someone to join
        stake = int_field(status, "min_validator_stake", "/status")
        needed = stake + FUNDING_FEES * int_field(status, "transaction_fee", "/status")
        config, account = write_candidate(ctx.root, target)
        add_to_keystore(ctx, account)
        address = account.public_key.to_address()
        with client_locks.sender(ctx.root, address.to_hex()):
            balance = _fund(ctx, address.to_hex(), needed)
        ctx.emit(
            {"config": str(config), "address": address.to_hex()},
            f"config {config}\naccount {address.to_hex()} (funded {balance})",
        )

    run_action(directory, as_json, act)


def _fund(ctx: Context, address: str, needed: int) -> int:
    """Ask the faucet for grants until `address` holds `needed`; its balance."""
    balance = ctx.client.balance(address)
    grants = 0
    while balance < needed:
        if grants == MAX_GRANTS:
            from soma.sdk import ApiError

            raise ApiError(
                "FUNDING_FAILED",
                f"{address} holds {balance} after {grants} faucet grants, {needed} needed: "
                f"fund it with `soma client transfer --to {address}`",
            )
        check_executed(ctx.client.faucet(address))
        grants += 1
        balance = ctx.client.balance(address)
    return balance
