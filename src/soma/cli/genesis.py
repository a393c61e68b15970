"""`soma genesis`: write the files of a new local network.

Takes the directory's lock first (see `soma.node.dir_lock`): a directory whose network
is running is refused with the pid that runs it, and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from soma.cli.output import fail


def check_genesis_numbers(epoch_duration_ms: int | None, min_validator_stake: int | None) -> None:
    """Refuse (status 2, before anything is written) an epoch length or a minimum stake
    that is not a positive u64: such a network could never change epochs, or would
    take validators with no stake."""
    for flag, value in (
        ("--epoch-duration-ms", epoch_duration_ms),
        ("--min-validator-stake", min_validator_stake),
    ):
        if value is not None and not 0 < value < 2**64:
            fail(
                f"{flag} must be a positive integer below 2^64, got {value}",
                code=2,
                error_code="INVALID_ARGUMENT",
            )


def genesis(
    directory: Annotated[Path, typer.Option("--dir", help="Directory to create the network in.")],
    validators: Annotated[int, typer.Option("--validators", help="Number of validators.")] = 4,
    accounts: Annotated[int, typer.Option("--accounts", help="Funded accounts.")] = 5,
    balance: Annotated[int, typer.Option("--balance", help="Balance of each funded coin.")] = 10
    ** 15,
    epoch_duration_ms: Annotated[
        int, typer.Option("--epoch-duration-ms", help="Length of an epoch, in milliseconds.")
    ] = 24 * 3600 * 1000,
    min_validator_stake: Annotated[
        int | None,
        typer.Option(
            "--min-validator-stake", help="Least stake of a validator (default: 1,000 fees)."
        ),
    ] = None,
    hosts: Annotated[
        str | None,
        typer.Option(
            "--hosts",
            help="Each node's public address, for a network across machines: "
            "validator-0=HOST:PORT,...,fullnode=HOST:PORT, or a YAML file of name: "
            "HOST:PORT. A node takes PORT and the two after it. Default: this machine, "
            "free loopback ports.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create genesis, one config per validator, a fullnode config and a client config
    with a keystore holding the funded accounts."""
    from soma.node.dir_lock import NetworkLock, NetworkRunningError
    from soma.node.hosts import parse_hosts
    from soma.node.local_network import create_local_network
    from soma.types.error import SomaError
    from soma.types.genesis import DEFAULT_PARAMETERS
    from soma.utils.interrupt import deferred_interrupts

    root = directory.expanduser()
    check_genesis_numbers(epoch_duration_ms, min_validator_stake)
    try:
        addresses_by_node = None if hosts is None else parse_hosts(hosts, validators)
    except SomaError as e:
        fail(e.message, code=2, error_code=e.code)
    lock = NetworkLock(root)
    try:
        lock.acquire()
        with deferred_interrupts():
            network = create_local_network(
                root,
                validators,
                accounts,
                balance,
                epoch_duration_ms,
                addresses_by_node,
                DEFAULT_PARAMETERS.min_validator_stake
                if min_validator_stake is None
                else min_validator_stake,
            )
    except NetworkRunningError as e:
        fail(e.message, code=1, error_code=e.code)
    except SomaError as e:
        fail(e.message, code=2, error_code=e.code)
    except OSError as e:
        fail(f"cannot write {directory}: {e.strerror}", code=2)
    finally:
        # A refused genesis on a new directory leaves nothing behind.
        lock.release_and_tidy()
    addresses = [a.public_key.to_address().to_hex() for a in network.accounts]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "directory": str(network.directory),
                    "validators": [str(p) for p in network.validator_configs],
                    "fullnode": str(network.fullnode_config),
                    "client": str(network.client_config),
                    "api_url": network.api_url,
                    "addresses": addresses,
                }
            )
        )
        return
    typer.echo(f"network written to {network.directory}")
    for address in addresses:
        typer.echo(f"  funded {address}")
