"""Code generation of struct encoders and decoders.

A generic loop over field codecs costs a Python call per field; generating straight-line
code per struct lets fixed-size fields (integers, digests, addresses, keys) be packed and
unpacked inline with one bounds check per run of them, which roughly halves decode time.
"""

from __future__ import annotations

import keyword
import typing
from typing import Any

from soma.types.bcs.codec import Codec, Decoder, Encoder, Inline
from soma.types.error import BcsEncodeError, UnexpectedEndError

#: Where a decoded value keeps the exact bytes it was decoded from (see `CachedBytes`).
CACHED_BYTES_ATTR = "_bcs_bytes"


def generate_struct_code(
    cls: type, names: list[str], codecs: list[Codec[Any]], keep_bytes: bool = False
) -> tuple[Encoder, Decoder]:
    """Compile an encoder and a decoder specialised to one struct's fields.

    The decoder builds the instance without the frozen-dataclass `__init__` (which goes
    through `object.__setattr__` per field) but still runs `__post_init__` checks. With
    `keep_bytes`, the decoder stores the input slice on the instance and the encoder
    reuses it, so a value received as bytes is never encoded again to be hashed,
    verified, stored or forwarded.
    """
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise TypeError(f"{cls.__name__}: field name {name!r} cannot be compiled")
    env: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_bytes_new": bytes.__new__,
        "_End": UnexpectedEndError,
        "_EncErr": BcsEncodeError,
    }
    enc_lines = ["def enc(v, out):"]
    dec_lines = ["def dec(buf, pos):", "    n = len(buf)"]
    if keep_bytes:
        enc_lines += [
            f"    kept = v.__dict__.get({CACHED_BYTES_ATTR!r})",
            "    if kept is not None:",
            "        out += kept",
            "        return",
        ]
        dec_lines.append("    start = pos")
    i = 0
    while i < len(codecs):
        # A run of consecutive inlinable fields shares one bounds check.
        run_end = i
        while run_end < len(codecs) and codecs[run_end].inline is not None:
            run_end += 1
        if run_end > i:
            run_size = sum(typing.cast(Inline, c.inline).size for c in codecs[i:run_end])
            message = f"{cls.__name__} needs {run_size} bytes for {', '.join(names[i:run_end])}"
            dec_lines += [
                f"    if pos + {run_size} > n:",
                f"        raise _End({message!r}, pos)",
            ]
            offset = 0
            for j in range(i, run_end):
                inline = typing.cast(Inline, codecs[j].inline)
                _inline_field(cls, j, names[j], inline, offset, env, enc_lines, dec_lines)
                offset += inline.size
            dec_lines.append(f"    pos += {run_size}")
            i = run_end
            continue
        env[f"_e{i}"] = codecs[i].enc
        env[f"_d{i}"] = codecs[i].dec
        enc_lines.append(f"    _e{i}(v.{names[i]}, out)")
        dec_lines.append(f"    f{i}, pos = _d{i}(buf, pos)")
        i += 1
    if len(enc_lines) == 1:
        enc_lines.append("    pass")
    dec_lines.append("    o = _new(_cls)")
    fields = [f"{name!r}: f{k}" for k, name in enumerate(names)]
    if keep_bytes:
        fields.append(f"{CACHED_BYTES_ATTR!r}: buf[start:pos]")
    if fields:
        dec_lines.append(f"    o.__dict__.update({{{', '.join(fields)}}})")
    if hasattr(cls, "__post_init__"):
        dec_lines.append("    o.__post_init__()")
    dec_lines.append("    return o, pos")
    exec("\n".join(enc_lines) + "\n\n" + "\n".join(dec_lines), env)
    return env["enc"], env["dec"]


def _inline_field(
    cls: type,
    k: int,
    name: str,
    inline: Inline,
    offset: int,
    env: dict[str, Any],
    enc_lines: list[str],
    dec_lines: list[str],
) -> None:
    at = f"pos + {offset}" if offset else "pos"
    where = f"{cls.__name__}.{name}"
    if inline.packer is not None:
        env[f"_pack{k}"] = inline.packer.pack
        env[f"_unpack{k}"] = inline.packer.unpack_from
        # `type(x) is int` keeps bools (an int subclass) out of integer fields, as the
        # stand-alone integer codecs do; struct.pack catches out-of-range values.
        enc_lines += [
            f"    x = v.{name}",
            "    if type(x) is not int:",
            f"        raise _EncErr({where + ' expects an int, got '!r} + type(x).__name__)",
            f"    out += _pack{k}(x)",
        ]
        dec_lines.append(f"    f{k} = _unpack{k}(buf, {at})[0]")
        return
    size = inline.size
    kind = inline.wrap if inline.wrap is not None else bytes
    env[f"_k{k}"] = kind
    message = f"{where} expects {size} bytes of type {kind.__name__}"
    enc_lines += [
        f"    x = v.{name}",
        f"    if not isinstance(x, _k{k}) or len(x) != {size}:",
        f"        raise _EncErr({message!r})",
        "    out += x",
    ]
    piece = f"buf[{at}:pos + {offset + size}]"
    if inline.wrap is None:
        dec_lines.append(f"    f{k} = {piece}")
    elif inline.length_only:
        # The newtype's constructor only checks the length, which the slice guarantees.
        dec_lines.append(f"    f{k} = _bytes_new(_k{k}, {piece})")
    else:
        dec_lines.append(f"    f{k} = _k{k}({piece})")
