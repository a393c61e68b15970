"""`soma keytool`: create and inspect Ed25519 key files (base64 of flag || seed, mode 0600)."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from soma.types.crypto import (
    AccountKeyPair,
    AuthorityKeyPair,
    Ed25519KeyPair,
    NetworkKeyPair,
    ProtocolKeyPair,
    read_key_file,
    write_key_file,
)
from soma.types.error import SomaError

keytool_app = typer.Typer(help="Create and inspect key files.", no_args_is_help=True)


class KeyRole(enum.StrEnum):
    ACCOUNT = "account"
    AUTHORITY = "authority"
    PROTOCOL = "protocol"
    NETWORK = "network"


_KEY_CLASSES: dict[KeyRole, type[Ed25519KeyPair]] = {
    KeyRole.ACCOUNT: AccountKeyPair,
    KeyRole.AUTHORITY: AuthorityKeyPair,
    KeyRole.PROTOCOL: ProtocolKeyPair,
    KeyRole.NETWORK: NetworkKeyPair,
}


RoleOption = Annotated[KeyRole, typer.Option("--role", help="What the key is for.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _describe(key: Ed25519KeyPair, role: KeyRole, path: Path) -> dict[str, str]:
    info = {"path": str(path), "role": role.value, "public_key": key.public_key.hex()}
    if role is KeyRole.ACCOUNT:
        info["address"] = str(key.public_key.to_address())
    if role is KeyRole.AUTHORITY:
        info["authority_name"] = str(key.public_key.to_authority_name())
    return info


def _print(info: dict[str, str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(info))
    else:
        for k, v in info.items():
            typer.echo(f"{k}: {v}")


def _fail(error: SomaError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


@keytool_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Key file to write (mode 0600).")],
    role: RoleOption = KeyRole.ACCOUNT,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Generate a new key and write it to a file."""
    if out.exists() and not force:
        typer.echo(f"error: {out} exists (use --force to overwrite)", err=True)
        raise typer.Exit(code=2)
    key = _KEY_CLASSES[role].generate()
    try:
        write_key_file(out, key)
    except OSError as e:
        typer.echo(f"error: cannot write {out}: {e.strerror}", err=True)
        raise typer.Exit(code=2) from None
    _print(_describe(key, role, out), as_json)


@keytool_app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="Key file to read.")],
    role: RoleOption = KeyRole.ACCOUNT,
    as_json: JsonOption = False,
) -> None:
    """Print the public key (and address, for account keys) of a key file."""
    try:
        key = read_key_file(path, _KEY_CLASSES[role])
    except SomaError as e:
        _fail(e)
        return
    _print(_describe(key, role, path), as_json)
