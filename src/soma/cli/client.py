"""`soma client`: use a network that `soma start` runs, through its HTTP API.

The network is found through `--dir D`, else the `SOMA_DIR` environment variable, else
the default directory; its `client.yaml` names the API and the keystore. Every command
takes `--json` and then prints one JSON value.

How a command ends: a result on stdout, exit 0. A transaction that executed with a
failure status (its input was already spent, say) is a failure too: exit 1, with one
line on stderr (`error: transaction ... failed: ...`), or with `--json` the result
object on stdout carrying `status: "failure"` and `error: {code, message}`. Any other
error is one line on stderr (`error: ...`, or `{"code", "message"}` with `--json`),
exit 1; bad arguments exit 2.

Only what a command needs is imported, inside it: `soma client status` answers in a
fraction of a second, and never loads the node, gRPC or the HTTP server stack.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from soma.cli.options import DirOption, JsonOption
from soma.cli.output import error_line, fail

if TYPE_CHECKING:
    from soma.sdk import Client
    from soma.types.base import ObjectID, SomaAddress
    from soma.types.config import ClientConfig
    from soma.types.crypto import AccountKeyPair

client_app = typer.Typer(
    help="Use a running network: addresses, coins, transfers.", no_args_is_help=True
)


#: `--dir` and `--json` given before the command (`soma client --json balance`).
_group: dict[str, Any] = {"directory": None, "as_json": False}


@client_app.callback()
def client_options(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Use a running network: addresses, coins, transfers."""
    _group["directory"] = directory
    _group["as_json"] = as_json


class TransactionFailed(Exception):
    """A transaction executed with a failure status: the command fails."""

    def __init__(self, result: dict[str, Any], code: str, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.code = code
        self.message = message


class Context:
    """One command's network: its directory, client config, keystore and API client."""

    def __init__(self, directory: Path | None, as_json: bool) -> None:
        from soma.node.layout import CLIENT_CONFIG, DIR_ENV, resolve_directory

        self.as_json = as_json
        self.root = resolve_directory(directory)
        config_path = self.root / CLIENT_CONFIG
        if not config_path.is_file():
            where = "--dir" if directory is not None else f"{DIR_ENV} or the default directory"
            fail(
                f"no network found in {self.root} (looked for {CLIENT_CONFIG}, from {where}); "
                f"start one with `soma start --dir {self.root}`, or point --dir or {DIR_ENV} "
                "at the directory of a running network",
                error_code="NO_NETWORK",
            )
        from soma.types.config import load_client_config

        self.config: ClientConfig = load_client_config(config_path)
        self._keys: list[AccountKeyPair] | None = None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            _skip_unused_imports()
            from soma.sdk import Client

            self._client = Client(self.config.api_url)
        return self._client

    @property
    def keys(self) -> list[AccountKeyPair]:
        if self._keys is None:
            from soma.types.config import load_keystore

            self._keys = load_keystore(self.config.keystore_path)
        return self._keys

    def forget_keys(self) -> None:
        """Read the keystore again at the next use (it was written)."""
        self._keys = None

    def key_for(self, address: SomaAddress | None) -> AccountKeyPair:
        from soma.sdk import ApiError

        wanted = address or self.config.active_address
        for key in self.keys:
            if wanted is None or key.public_key.to_address() == wanted:
                return key
        raise ApiError("UNKNOWN_ADDRESS", f"{wanted} is not in the keystore")

    @contextlib.contextmanager
    def sending_from(self, address: SomaAddress | None) -> Iterator[AccountKeyPair]:
        """The sender's key, with the sender's lock held (see `client_locks`)."""
        from soma.cli import client_locks

        key = self.key_for(address)
        with client_locks.sender(self.root, key.public_key.to_address().to_hex()):
            yield key

    def emit(self, value: Any, text: str) -> None:
        typer.echo(json.dumps(value) if self.as_json else text)

    def unreachable(self, message: str) -> str:
        """Say why the API cannot be reached: the network is stopped, or not yet up."""
        from soma.node.dir_lock import lock_holder

        holder = lock_holder(self.root)
        if holder is None:
            return (
                f"the network in {self.root} is not running; start it with "
                f"`soma start --dir {self.root}`"
            )
        running = f"the network in {self.root} is running (pid {holder})" if holder else ""
        return f"{message}; {running or 'the network is running'} but its API does not answer yet"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def add_to_keystore(ctx: Context, key: AccountKeyPair) -> None:
    """Add `key` to the network's keystore (its format kept: a list of base64 keys)."""
    from soma.cli import client_locks
    from soma.types.config import dump_yaml, load_keystore

    with client_locks.keystore(ctx.root):
        # Read again under the lock: another command may have just added a key.
        known = load_keystore(ctx.config.keystore_path)
        keystore = [*(k.to_base64() for k in known), key.to_base64()]
        dump_yaml(ctx.config.keystore_path, keystore, private=True)
    ctx.forget_keys()


def _skip_unused_imports() -> None:
    """When they are installed, httpx imports its own command-line tool (click, rich,
    pygments) and httpcore probes for trio: together a fifth of a quick command's time,
    for code this process never runs. None in `sys.modules` makes those imports fail at
    once, and both libraries carry on without them."""
    for name in ("httpx._main", "trio"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def run_action(directory: Path | None, as_json: bool, action: Any) -> None:
    """Run one command's action; every way it can fail ends in one line (or one JSON
    object) and a non-zero status, never a traceback."""
    from soma.types.error import SomaError

    directory = directory or _group["directory"]
    as_json = as_json or bool(_group["as_json"])
    ctx: Context | None = None
    try:
        ctx = Context(directory, as_json)
        action(ctx)
    except TransactionFailed as e:
        assert ctx is not None
        _failed_transaction(ctx, e)
    except SomaError as e:
        code = getattr(e, "api_code", e.code)
        message = e.message
        if code == "UNREACHABLE" and ctx is not None:
            code, message = "NOT_RUNNING", ctx.unreachable(message)
        typer.echo(error_line(message, code, as_json), err=True)
        raise typer.Exit(code=1) from None
    except OSError as e:
        # The network directory or keystore cannot be read or written (permissions, a
        # full disk): say which file and why.
        where = f" {e.filename}" if e.filename else ""
        typer.echo(
            error_line(f"cannot use{where}: {e.strerror or e}", "IO_ERROR", as_json), err=True
        )
        raise typer.Exit(code=1) from None
    finally:
        if ctx is not None:
            ctx.close()


def _failed_transaction(ctx: Context, e: TransactionFailed) -> NoReturn:
    result = e.result
    if ctx.as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"error: transaction {result.get('digest')} failed: {e.message} "
            f"[{e.code}] (fee {result.get('fee', 0)} charged)",
            err=True,
        )
    raise typer.Exit(code=1)


def _address(text: str | None, what: str = "address") -> SomaAddress | None:
    if text is None:
        return None
    from soma.types.base import SomaAddress
    from soma.types.error import SomaError

    try:
        return SomaAddress.from_hex(text)
    except SomaError as e:
        fail(f"{what}: {e.message}", code=2, error_code="INVALID_ADDRESS")


def _object_id(text: str, what: str = "--coins") -> ObjectID:
    from soma.types.base import ObjectID
    from soma.types.error import SomaError

    try:
        return ObjectID.from_hex(text)
    except SomaError as e:
        fail(f"{what}: {e.message}", code=2, error_code="INVALID_OBJECT_ID")


def _digest(text: str) -> None:
    """Refuse (status 2) what cannot be a transaction digest, before any request."""
    from soma.types.digests import TransactionDigest
    from soma.types.error import SomaError

    try:
        TransactionDigest.from_base58(text)
    except SomaError as e:
        fail(f"digest: {e.message}", code=2, error_code="INVALID_DIGEST")


def _positive(amount: int, name: str) -> int:
    if amount <= 0 or amount >= 2**64:
        fail(f"{name} must be a positive amount below 2^64", code=2, error_code="INVALID_AMOUNT")
    return amount


def check_executed(result: dict[str, Any]) -> dict[str, Any]:
    """A transaction's result as the CLI prints it (failures made `TransactionFailed`)."""
    from soma.sdk import result_error

    failure = result_error(result)
    out = {
        "digest": result["digest"],
        "status": result["status"],
        "fee": result["fee"],
        "effects": result.get("effects"),
    }
    if failure is not None:
        code, message = failure
        raise TransactionFailed({**out, "error": {"code": code, "message": message}}, *failure)
    return out


def print_result(ctx: Context, result: dict[str, Any]) -> None:
    """Print a transaction's result; one that first merged coins (a transfer from more
    coins than a transaction may name) lists those merges and the fees of them all."""
    merges = [check_executed(m) for m in result.get("merges", ())]
    summary = check_executed(result)
    text = f"{summary['status']}: {summary['digest']} (fee {summary['fee']})"
    if merges:
        total = summary["fee"] + sum(m["fee"] for m in merges)
        summary = {**summary, "merges": merges, "total_fee": total}
        text += f", after merging coins in {len(merges)} transactions (fees {total} in all)"
    ctx.emit(summary, text)


@client_app.command("new-address")
def new_address(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Generate a key, add it to the keystore, print its address."""

    def act(ctx: Context) -> None:
        from soma.types.crypto import AccountKeyPair

        key = AccountKeyPair.generate()
        add_to_keystore(ctx, key)
        address = key.public_key.to_address().to_hex()
        ctx.emit({"address": address}, address)

    run_action(directory, as_json, act)


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

    run_action(directory, as_json, act)


@client_app.command("env")
def env(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Where the network is: its directory, API URL, keystore, active address."""

    def act(ctx: Context) -> None:
        from soma.node.dir_lock import lock_holder

        holder = lock_holder(ctx.root)
        found = {
            "directory": str(ctx.root),
            "api_url": ctx.config.api_url,
            "keystore": str(ctx.config.keystore_path),
            "active_address": None
            if ctx.config.active_address is None
            else ctx.config.active_address.to_hex(),
            "running": holder is not None,
            "pid": holder or None,
        }
        ctx.emit(found, "\n".join(f"{k}: {v}" for k, v in found.items()))

    run_action(directory, as_json, act)


@client_app.command("nodes")
def nodes(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The network's nodes: name, role, metrics URL and API URL (where one is served)."""

    def act(ctx: Context) -> None:
        from soma.node.node_list import list_nodes

        listed = list_nodes(ctx.root)
        lines = [
            f"{n.name:<14} {n.role:<10} metrics {n.metrics_url or '-'}"
            + (f"  api {n.api_url}" if n.api_url else "")
            for n in listed
        ]
        ctx.emit([n.to_json() for n in listed], "\n".join(lines))

    run_action(directory, as_json, act)


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
        print_result(ctx, ctx.client.faucet(to))

    run_action(directory, as_json, act)


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
        rows = []
        for owner in wanted:
            info = ctx.client.balance_info(owner)
            rows.append(
                {"address": owner.to_hex(), "balance": info["balance"], "coins": info["coins"]}
            )
        ctx.emit(rows, "\n".join(f"{r['address']} {r['balance']}" for r in rows))

    run_action(directory, as_json, act)


@client_app.command("objects")
def objects(
    address: Annotated[str | None, typer.Argument(help="Owner (default: active).")] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, max=1000, help="One page of at most this many."),
    ] = None,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Where the page starts (from next_cursor).")
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Objects owned by an address: all of them, or one page with --limit/--cursor."""
    target = _address(address)

    def act(ctx: Context) -> None:
        owner = target or ctx.key_for(None).public_key.to_address()
        if limit is None and cursor is None:
            rows = [_ref_json(r) for r in ctx.client.iter_objects(owner)]
            ctx.emit(rows, "\n".join(f"{r['object_id']} v{r['version']}" for r in rows))
            return
        page = ctx.client.objects(owner, cursor=cursor, limit=limit)
        rows = [_ref_json(r) for r in page.items]
        ctx.emit(
            {"objects": rows, "next_cursor": page.next_cursor},
            "\n".join(f"{r['object_id']} v{r['version']}" for r in rows)
            + (f"\nnext: --cursor {page.next_cursor}" if page.next_cursor else ""),
        )

    run_action(directory, as_json, act)


def _ref_json(ref: Any) -> dict[str, Any]:
    return {"object_id": str(ref.object_id), "version": ref.version, "digest": str(ref.digest)}


@client_app.command("transfer")
def transfer(
    to: Annotated[str, typer.Option("--to", help="Recipient address (64 hex digits).")],
    amount: Annotated[int, typer.Option("--amount", help="Amount to send.")],
    sender: Annotated[str | None, typer.Option("--from", help="Sender (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send coins: as many of the sender's coins as it takes, largest first."""
    recipient = _address(to, "--to")
    source = _address(sender, "--from")
    _positive(amount, "--amount")

    def act(ctx: Context) -> None:
        assert recipient is not None
        with ctx.sending_from(source) as key:
            print_result(ctx, ctx.client.transfer(key, recipient, amount))

    run_action(directory, as_json, act)


@client_app.command("pay")
def pay(
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeat, with --amount).")],
    amount: Annotated[list[int], typer.Option("--amount", help="Amount for each --to.")],
    sender: Annotated[str | None, typer.Option("--from", help="Sender (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pay several recipients at once, from as many coins as it takes."""
    if len(to) != len(amount):
        fail("give one --amount per --to", code=2, error_code="USAGE_ERROR")
    recipients = [_address(t, "--to") for t in to]
    amounts = [_positive(a, "--amount") for a in amount]
    source = _address(sender, "--from")

    def act(ctx: Context) -> None:
        with ctx.sending_from(source) as key:
            print_result(ctx, ctx.client.pay(key, [r for r in recipients if r], amounts))

    run_action(directory, as_json, act)


@client_app.command("merge-coins")
def merge_coins(
    coins: Annotated[
        list[str] | None,
        typer.Option("--coins", help="Merge only these coins (IDs; repeat or list them)."),
    ] = None,
    more: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Owner (default: active).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge all of an address's coins (or those given) into one, in as many
    transactions as the input limit requires."""
    texts = [t for item in [*(coins or []), *(more or [])] for t in item.split(",") if t]
    subset = [_object_id(t) for t in texts] or None
    source = _address(sender, "--from")

    def act(ctx: Context) -> None:
        from soma.sdk import ApiError

        with ctx.sending_from(source) as key:
            try:
                results = ctx.client.merge_coins(key, subset)
            except ApiError as e:
                if e.api_code != "NOTHING_TO_MERGE":
                    raise
                # Already one coin (or none): nothing to do is not a failure.
                ctx.emit({"status": "success", "transactions": []}, f"nothing to merge: {e}")
                return
        summaries = [check_executed(r) for r in results]
        ctx.emit(
            {"status": "success", "transactions": summaries},
            "\n".join(f"merged: {s['digest']} (fee {s['fee']})" for s in summaries),
        )

    run_action(directory, as_json, act)


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
    source = _address(sender, "--from")

    def act(ctx: Context) -> None:
        with ctx.sending_from(source) as key:
            print_result(ctx, ctx.client.split_coin(key, amounts))

    run_action(directory, as_json, act)


@client_app.command("tx")
def tx(
    digest: Annotated[str, typer.Argument(help="Transaction digest.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """A transaction and its effects."""
    _digest(digest)

    def act(ctx: Context) -> None:
        found = ctx.client.transaction(digest)
        effects = found.get("effects") or {}
        line = f"{found['digest']}: {effects.get('status', 'unknown')}"
        if effects.get("status") == "failure":
            from soma.sdk import result_error

            failure = result_error({"status": "failure", "effects": effects})
            if failure is not None:
                line += f": {failure[1]} [{failure[0]}]"
        ctx.emit(found, line)

    run_action(directory, as_json, act)


@client_app.command("object")
def get_object(
    object_id: Annotated[str, typer.Argument(help="Object ID.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """One object."""
    _object_id(object_id, "object ID")

    def act(ctx: Context) -> None:
        found = ctx.client.get_object(object_id)
        ctx.emit(found, json.dumps(found, indent=2))

    run_action(directory, as_json, act)


@client_app.command("committee")
def committee(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The current committee."""

    def act(ctx: Context) -> None:
        found = ctx.client.committee()
        lines = [f"epoch {found['epoch']}"] + [
            f"  {m.get('hostname')} {m['name']} stake {m['stake']} "
            f"({m.get('voting_power')}/10000) {m['network_address']} account {m.get('account')}"
            for m in found["members"]
        ]
        ctx.emit(found, "\n".join(lines))

    run_action(directory, as_json, act)


@client_app.command("supply")
def supply(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Where the network's money is: in coins, staked, in fees not yet paid out; the
    total equals what genesis created."""

    def act(ctx: Context) -> None:
        found = ctx.client.supply()
        ctx.emit(
            found,
            f"total {found['total']} (genesis {found['genesis']}): coins {found['coins']}, "
            f"stake {found['stake']}, fees not yet paid out {found['pending_fees']}",
        )

    run_action(directory, as_json, act)


@client_app.command("status")
def status(
    directory: DirOption = None,
    as_json: JsonOption = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Each node's status, refreshed every second until Ctrl-C: a live panel "
            "on a terminal, else a line (with --json, an object) a refresh.",
        ),
    ] = False,
) -> None:
    """Epoch and latest commit of the network."""

    def act(ctx: Context) -> None:
        if watch:
            from soma.cli.dashboard import watch_network

            watch_network(ctx.root, ctx.config.api_url, ctx.as_json)
            return
        found = ctx.client.status()
        ctx.emit(found, f"epoch {found['epoch']}, latest commit {found['latest_commit']}")

    run_action(directory, as_json, act)


# The validator commands build on the helpers above: added once they are defined.
from soma.cli.client_validator import validator_app  # noqa: E402

client_app.add_typer(validator_app, name="validator")
