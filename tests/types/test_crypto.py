"""Ed25519 keys, signatures, addresses, user signatures and key files."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types.base import SomaAddress
from soma.types.bcs import BYTES, decode, encode
from soma.types.crypto import (
    AccountKeyPair,
    AuthorityKeyPair,
    Ed25519KeyPair,
    Ed25519PublicKey,
    Ed25519Signature,
    NetworkKeyPair,
    ProtocolKeyPair,
    SignatureScheme,
    UserSignature,
    read_key_file,
    write_key_file,
)
from soma.types.error import (
    BcsDecodeError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidValueError,
    KeyFileError,
)
from soma.types.intent import Intent, IntentScope
from tests.types.conftest import account_key, seed

KEY_CLASSES: list[type[Ed25519KeyPair]] = [
    AccountKeyPair,
    AuthorityKeyPair,
    ProtocolKeyPair,
    NetworkKeyPair,
]
TX_INTENT = Intent.soma(IntentScope.TRANSACTION_DATA)


def flip_bit(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


# --- keys and raw signatures -----------------------------------------------------------


@pytest.mark.parametrize("kind", KEY_CLASSES)
def test_generate_gives_distinct_working_keys(kind: type[Ed25519KeyPair]) -> None:
    a, b = kind.generate(), kind.generate()
    assert isinstance(a, kind)
    assert a != b
    assert a.public_key != b.public_key
    assert len(a.public_key) == 32
    assert len(a.seed_bytes()) == 32
    sig = a.sign(b"hello")
    assert isinstance(sig, Ed25519Signature)
    assert len(sig) == 64
    a.public_key.verify(b"hello", sig)
    with pytest.raises(InvalidSignatureError):
        b.public_key.verify(b"hello", sig)


def test_seed_determines_key() -> None:
    s = seed("crypto", 1)
    assert AccountKeyPair(s) == AccountKeyPair(s)
    assert AccountKeyPair(s).public_key == AccountKeyPair(s).public_key
    assert hash(AccountKeyPair(s)) == hash(AccountKeyPair(s))
    assert AccountKeyPair(s) != AccountKeyPair(seed("crypto", 2))


def test_keys_of_different_roles_are_never_equal() -> None:
    s = seed("crypto", 3)
    assert AccountKeyPair(s) != AuthorityKeyPair(s)
    assert ProtocolKeyPair(s) != NetworkKeyPair(s)
    # Same seed, same bytes: only the role differs.
    assert AccountKeyPair(s).public_key == AuthorityKeyPair(s).public_key


def test_ed25519_rfc8032_test_vector_1() -> None:
    """RFC 8032 section 7.1, TEST 1 (empty message): we are plain Ed25519."""
    sk = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pk = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    key = Ed25519KeyPair(sk)
    assert key.public_key == pk
    assert key.sign(b"") == sig
    Ed25519PublicKey(pk).verify(b"", Ed25519Signature(sig))


@settings(max_examples=40, deadline=None)
@given(message=st.binary(max_size=200), data=st.data())
def test_tampered_signature_message_or_key_is_rejected(message: bytes, data: st.DataObject) -> None:
    key = account_key(0)
    sig = key.sign(message)
    key.public_key.verify(message, sig)

    i = data.draw(st.integers(0, 63), label="signature byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(InvalidSignatureError):
        key.public_key.verify(message, Ed25519Signature(flip_bit(sig, i, bit)))

    other = data.draw(st.binary(max_size=200).filter(lambda m: m != message), label="other")
    with pytest.raises(InvalidSignatureError):
        key.public_key.verify(other, sig)

    j = data.draw(st.integers(0, 31), label="public key byte")
    tampered_pk = Ed25519PublicKey(flip_bit(key.public_key, j, bit))
    with pytest.raises(InvalidSignatureError):
        tampered_pk.verify(message, sig)


def test_signature_under_another_key_is_rejected() -> None:
    sig = account_key(0).sign(b"m")
    with pytest.raises(InvalidSignatureError):
        account_key(1).public_key.verify(b"m", sig)


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_wrong_length_keys_are_rejected(length: int) -> None:
    with pytest.raises(InvalidKeyError):
        Ed25519PublicKey(bytes(length))
    for kind in KEY_CLASSES:
        with pytest.raises(InvalidKeyError):
            kind(bytes(length))


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 97])
def test_wrong_length_signatures_are_rejected(length: int) -> None:
    with pytest.raises(InvalidSignatureError):
        Ed25519Signature(bytes(length))
    key = account_key(0)
    # A raw bytes signature of the wrong length handed straight to verify.
    with pytest.raises(InvalidSignatureError):
        key.public_key.verify(b"m", bytes(length))


def test_invalid_curve_point_public_key_is_rejected_as_bad_signature() -> None:
    sig = account_key(0).sign(b"m")
    # Not a valid encoding of a curve point (y >= p).
    bad = Ed25519PublicKey(b"\xff" * 32)
    with pytest.raises(InvalidSignatureError):
        bad.verify(b"m", sig)


# --- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize("i", range(4))
def test_address_is_blake2b_of_flag_and_public_key(i: int) -> None:
    key = account_key(i)
    expected = hashlib.blake2b(b"\x00" + bytes(key.public_key), digest_size=32).digest()
    assert key.address == expected
    assert isinstance(key.address, SomaAddress)
    assert key.public_key.to_address() == expected
    assert SomaAddress.from_public_key(SignatureScheme.ED25519, key.public_key) == expected


def test_authority_name_is_the_public_key() -> None:
    key = AuthorityKeyPair(seed("crypto", 9))
    assert key.name == bytes(key.public_key)
    assert key.public_key.to_authority_name() == key.name


# --- user signatures ------------------------------------------------------------------


def test_user_signature_layout() -> None:
    key = account_key(0)
    value = b"some transaction bytes"
    sig = UserSignature.create(key, TX_INTENT, value)
    assert len(sig) == 97 == UserSignature.LENGTH
    assert sig[0] == 0x00
    assert sig.scheme is SignatureScheme.ED25519
    assert sig[1:65] == sig.signature
    assert sig[65:] == key.public_key == sig.public_key
    assert sig.signer() == key.address
    assert sig.verify(TX_INTENT, value) == key.address
    # The 64 signature bytes are a plain Ed25519 signature over the intent digest.
    digest = hashlib.blake2b(TX_INTENT.to_bytes() + value, digest_size=32).digest()
    key.public_key.verify(digest, sig.signature)
    assert repr(sig) == f"UserSignature(signer={key.address})"


def test_user_signature_with_swapped_public_key_is_rejected() -> None:
    value = b"v"
    sig = UserSignature.create(account_key(0), TX_INTENT, value)
    forged = UserSignature(sig[:65] + account_key(1).public_key)
    assert forged.signer() == account_key(1).address
    with pytest.raises(InvalidSignatureError):
        forged.verify(TX_INTENT, value)


@settings(max_examples=30, deadline=None)
@given(value=st.binary(max_size=100), index=st.integers(1, 64), bit=st.integers(0, 7))
def test_user_signature_with_flipped_signature_bit_is_rejected(
    value: bytes, index: int, bit: int
) -> None:
    sig = UserSignature.create(account_key(0), TX_INTENT, value)
    with pytest.raises(InvalidSignatureError):
        UserSignature(flip_bit(sig, index, bit)).verify(TX_INTENT, value)


@pytest.mark.parametrize("length", [0, 1, 96, 98, 200])
def test_user_signature_wrong_length_is_rejected(length: int) -> None:
    with pytest.raises(InvalidSignatureError):
        UserSignature(bytes(length))


@pytest.mark.parametrize("flag", [1, 2, 0xFF])
def test_user_signature_unknown_scheme_is_rejected(flag: int) -> None:
    sig = UserSignature.create(account_key(0), TX_INTENT, b"v")
    with pytest.raises(InvalidSignatureError):
        UserSignature(bytes([flag]) + sig[1:])


def test_user_signature_wire_form_is_length_prefixed_and_checked_on_decode() -> None:
    sig = UserSignature.create(account_key(0), TX_INTENT, b"v")
    codec = UserSignature.bcs_codec()
    wire = encode(sig, codec)
    assert wire == bytes([97]) + sig
    back = decode(wire, codec)
    assert back == sig
    assert isinstance(back, UserSignature)
    for bad in (bytes(96), b"\x01" + sig[1:]):
        with pytest.raises(InvalidValueError) as err:
            decode(encode(bad, BYTES), codec)
        assert isinstance(err.value, BcsDecodeError)


# --- key files --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KEY_CLASSES)
def test_key_file_round_trip_per_role(kind: type[Ed25519KeyPair], tmp_path: Path) -> None:
    key = kind.generate()
    path = tmp_path / f"{kind.ROLE}.key"
    write_key_file(path, key)
    back = read_key_file(path, kind)
    assert type(back) is kind
    assert back == key
    assert back.public_key == key.public_key
    # String paths work as well as Path objects.
    assert read_key_file(str(path), kind) == key


def test_key_file_mode_is_0600_and_content_is_base64_flag_and_seed(tmp_path: Path) -> None:
    key = AuthorityKeyPair(seed("keyfile", 0))
    path = tmp_path / "nested" / "dir" / "authority.key"
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert base64.b64decode(text.strip(), validate=True) == b"\x00" + key.seed_bytes()
    assert text.strip() == key.to_base64()
    # No temporary file is left next to the key.
    assert sorted(p.name for p in path.parent.iterdir()) == ["authority.key"]


def test_key_file_overwrite_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text("old contents")
    os.chmod(path, 0o644)
    key = AccountKeyPair(seed("keyfile", 1))
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path, AccountKeyPair) == key

    other = AccountKeyPair(seed("keyfile", 2))
    write_key_file(path, other)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path, AccountKeyPair) == other


def test_key_file_mode_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "k.key"
        write_key_file(path, AccountKeyPair(seed("keyfile", 3)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _assert_key_file_error(path: Path) -> None:
    with pytest.raises(KeyFileError) as err:
        read_key_file(path, AccountKeyPair)
    assert str(path) in err.value.message
    assert str(path) in str(err.value)


def test_read_missing_key_file(tmp_path: Path) -> None:
    _assert_key_file_error(tmp_path / "missing.key")


def test_read_directory_as_key_file(tmp_path: Path) -> None:
    _assert_key_file_error(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not base64 at all!!",
        "====",
        base64.b64encode(b"\x00" + bytes(31)).decode(),  # too short
        base64.b64encode(b"\x00" + bytes(33)).decode(),  # too long
        base64.b64encode(bytes(32)).decode(),  # seed without flag
        base64.b64encode(b"\x01" + bytes(32)).decode(),  # unknown scheme flag
        base64.b64encode(b"\xff" + bytes(32)).decode(),
        "ключ",  # non-ASCII text
    ],
)
def test_read_malformed_key_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content, encoding="utf-8")
    _assert_key_file_error(path)


def test_read_binary_garbage_key_file(tmp_path: Path) -> None:
    """Bytes that are not even UTF-8 are a bad key file too, not a UnicodeDecodeError."""
    path = tmp_path / "garbage.key"
    path.write_bytes(b"\xff\xfe\x00\x81garbage\x9c")
    _assert_key_file_error(path)


def test_key_file_tolerates_surrounding_whitespace(tmp_path: Path) -> None:
    key = AccountKeyPair(seed("keyfile", 4))
    path = tmp_path / "k.key"
    path.write_text(f"  {key.to_base64()}\n\n")
    assert read_key_file(path, AccountKeyPair) == key


@pytest.mark.parametrize("kind", KEY_CLASSES)
def test_base64_round_trip(kind: type[Ed25519KeyPair]) -> None:
    key = kind(seed("b64", 0))
    assert kind.from_base64(key.to_base64()) == key


@pytest.mark.parametrize("kind", KEY_CLASSES)
def test_repr_never_shows_the_private_seed(kind: type[Ed25519KeyPair]) -> None:
    key = kind(seed("repr", 0))
    secret = key.seed_bytes()
    forms = [repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})]
    # Every encoding of the seed a log line could plausibly contain.
    leaks = [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.b64encode(b"\x00" + secret).decode(),
        key.to_base64(),
        repr(secret),
    ]
    for form in forms:
        for leak in leaks:
            assert leak not in form
    assert key.public_key.hex() in repr(key)
    assert kind.__name__ in repr(key)
