"""`soma client`: use a network that `soma start` runs, through its HTTP API.

The network is found through `--dir D`, else the `SOMA_DIR` environment variable, else
the default directory; its `client.yaml` names the API and the keystore. Every command
takes `--json` and then prints one JSON value; errors go to stderr as `error: ...` (or
`{"code", "message"}` with `--json`) with exit status 1, bad arguments exit 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from soma.node.local_network import CLIENT_CONFIG
from soma.node.start import default_directory
from soma.sdk.client import ApiError, Client
from soma.types.base import SomaAddress
from soma.types.config import ClientConfig, dump_yaml, load_client_config, load_keystore
from soma.types.crypto import AccountKeyPair
from soma.types.error import SomaError

client_app = typer.Typer(
    help="Use a running network: addresses, coins, transfers.", no_args_is_help=True
)

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="Network directory (else SOMA_DIR, else the default).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


#: `--dir` and `--json` given before the command (`soma client --json balance`).
_group: dict[str, Any] = {"directory": None, "as_json": False}


@client_app.callback()
def client_options(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Use a running network: addresses, coins, transfers."""
    _group["directory"] = directory
    _group["as_json"] = as_json


class Context:
    def __init__(self, directory: Path | None, as_json: bool) -> None:
        self.as_json = as_json
        root = directory or (
            Path(os.environ["SOMA_DIR"]) if os.environ.get("SOMA_DIR") else default_directory()
        )
        self.config: ClientConfig = load_client_config(root.expanduser() / CLIENT_CONFIG)
        self.keys = load_keystore(self.config.keystore_path)
        self.client = Client(self.config.api_url)

    def key_for(self, address: SomaAddress | None) -> AccountKeyPair:
        wanted = address or self.config.active_address
        for key in self.keys:
            if wanted is None or key.public_key.to_address() == wanted:
                return key
        raise ApiError("UNKNOWN_ADDRESS", f"{wanted} is not in the keystore")

    def emit(self, value: Any, text: str) -> None:
        typer.echo(json.dumps(value) if self.as_json else text)


def _run(directory: Path | None, as_json: bool, action: Any) -> None:
    directory = directory or _group["directory"]
    as_json = as_json or bool(_group["as_json"])
    try:
        ctx = Context(directory, as_json)
        action(ctx)
    except SomaError as e:
        payload = e.to_dict()
        typer.echo(json.dumps(payload) if as_json else f"error: {e}", err=True)
        raise typer.Exit(code=1) from None


def _address(text: str | None) -> SomaAddress | None:
    if text is None:
        return None
    try:
        return SomaAddress.from_hex(text)
    except SomaError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from None


def _positive(amount: int, name: str) -> int:
    if amount <= 0 or amount >= 2**64:
        typer.echo(f"error: {name} must be a positive amount below 2^64", err=True)
        raise typer.Exit(code=2)
    return amount


def _result(ctx: Context, result: dict[str, Any]) -> None:
    summary = {"digest": result["digest"], "status": result["status"], "fee": result["fee"]}
    error = result.get("effects", {}).get("error")
    if error is not None:
        summary["error"] = error
    ctx.emit(
        {**summary, "effects": result.get("effects")},
        f"{result['status']}: {result['digest']} (fee {result['fee']})"
        + (f" {error}" if error else ""),
    )


@client_app.command("new-address")
def new_address(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Generate a key, add it to the keystore, print its address."""

    def act(ctx: Context) -> None:
        key = AccountKeyPair.generate()
        keystore = [*(k.to_base64() for k in ctx.keys), key.to_base64()]
        dump_yaml(ctx.config.keystore_path, keystore, private=True)
        address = key.public_key.to_address().to_hex()
        ctx.emit({"address": address}, address)

    _run(directory, as_json, act)


@client_app.command("addresses")
def addresses(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The keystore's addresses (the active one marked)."""

    def act(ctx: Context) -> None:
        active = ctx.config.active_address
        rows = [
            {
                "address": k.public_key.to_address().to_hex(),
                "active": k.public_key.to_address() == active,
            }
            for k in ctx.keys
        ]
        ctx.emit(rows, "\n".join(("* " if r["active"] else "  ") + str(r["address"]) for r in rows))

    _run(directory, as_json, act)


@client_app.command("faucet")
def faucet(
    address: Annotated[
        str | None, typer.Argument(help="Address to fund (default: active).")
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the network's faucet for coins."""
    target = _address(address)

    def act(ctx: Context) -> None:
        to = target or ctx.key_for(None).public_key.to_address()
        _result(ctx, ctx.client.faucet(to))

    _run(directory, as_json, act)


@client_app.command("balance")
def balance(
    address: Annotated[
        str | None, typer.Argument(help="Address (default: every keystore address).")
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Balances in coins."""
    target = _address(address)

    def act(ctx: Context) -> None:
        wanted = [target] if target else [k.public_key.to_address() for k in ctx.keys]
        rows = [{"address": a.to_hex(), "balance": ctx.client.balance(a)} for a in wanted]
        ctx.emit(rows, "\n".join(f"{r['address']} {r['balance']}" for r in rows))

    _run(directory, as_json, act)


@client_app.command("objects")
def objects(
    address: Annotated[str | None, typer.Argument(help="Owner (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Objects owned by an address."""
    target = _address(address)

    def act(ctx: Context) -> None:
        owner = target or ctx.key_for(None).public_key.to_address()
        rows = ctx.client.objects(owner)
        ctx.emit(rows, "\n".join(f"{r['object_id']} v{r['version']}" for r in rows))

    _run(directory, as_json, act)


@client_app.command("transfer")
def transfer(
    to: Annotated[str, typer.Option("--to", help="Recipient address.")],
    amount: Annotated[int, typer.Option("--amount", help="Amount to send.")],
    sender: Annotated[str | None, typer.Option("--from", help="Sender (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send coins."""
    recipient = _address(to)
    source = _address(sender)
    _positive(amount, "--amount")

    def act(ctx: Context) -> None:
        assert recipient is not None
        _result(ctx, ctx.client.transfer(ctx.key_for(source), recipient, amount))

    _run(directory, as_json, act)


@client_app.command("pay")
def pay(
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeat, with --amount).")],
    amount: Annotated[list[int], typer.Option("--amount", help="Amount for each --to.")],
    sender: Annotated[str | None, typer.Option("--from", help="Sender (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pay several recipients at once from all the sender's coins."""
    if len(to) != len(amount):
        typer.echo("error: give one --amount per --to", err=True)
        raise typer.Exit(code=2)
    recipients = [_address(t) for t in to]
    amounts = [_positive(a, "--amount") for a in amount]
    source = _address(sender)

    def act(ctx: Context) -> None:
        _result(ctx, ctx.client.pay(ctx.key_for(source), [r for r in recipients if r], amounts))

    _run(directory, as_json, act)


@client_app.command("merge-coins")
def merge_coins(
    sender: Annotated[str | None, typer.Option("--from", help="Owner (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge all of an address's coins into one."""
    source = _address(sender)
    _run(directory, as_json, lambda ctx: _result(ctx, ctx.client.merge_coins(ctx.key_for(source))))


@client_app.command("split-coin")
def split_coin(
    amount: Annotated[
        list[int], typer.Option("--amount", help="Amount of each new coin (repeat).")
    ],
    sender: Annotated[str | None, typer.Option("--from", help="Owner (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Split new coins off the largest coin."""
    amounts = [_positive(a, "--amount") for a in amount]
    source = _address(sender)
    _run(
        directory,
        as_json,
        lambda ctx: _result(ctx, ctx.client.split_coin(ctx.key_for(source), amounts)),
    )


@client_app.command("tx")
def tx(
    digest: Annotated[str, typer.Argument(help="Transaction digest.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """A transaction and its effects."""

    def act(ctx: Context) -> None:
        found = ctx.client.transaction(digest)
        effects = found.get("effects") or {}
        ctx.emit(found, f"{found['digest']}: {effects.get('status', 'unknown')}")

    _run(directory, as_json, act)


@client_app.command("object")
def get_object(
    object_id: Annotated[str, typer.Argument(help="Object ID.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """One object."""

    def act(ctx: Context) -> None:
        found = ctx.client.get_object(object_id)
        ctx.emit(found, json.dumps(found, indent=2))

    _run(directory, as_json, act)


@client_app.command("committee")
def committee(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The current committee."""

    def act(ctx: Context) -> None:
        found = ctx.client.committee()
        lines = [f"epoch {found['epoch']}"] + [
            f"  {m['name']} stake {m['stake']} {m['network_address']}" for m in found["members"]
        ]
        ctx.emit(found, "\n".join(lines))

    _run(directory, as_json, act)


@client_app.command("status")
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Epoch and latest commit."""

    def act(ctx: Context) -> None:
        found = ctx.client.status()
        ctx.emit(found, f"epoch {found['epoch']}, latest commit {found['latest_commit']}")

    _run(directory, as_json, act)
