"""Micro-benchmarks of the foundations: µs per operation.

    python bench/micro.py [--json] [--quick]

Each figure is the best of several timed repetitions (the least disturbed by whatever
else the machine is doing), divided by the operations in one repetition. The quorum
certificate figures are for Ed25519 signer-bitmap certificates, verified one signature
after another on one core.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable

from soma.storage import U64_BE, BytesCodec, Database, TableSpec
from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import encode
from soma.types.committee import Committee, CommitteeMember
from soma.types.crypto import AccountKeyPair, AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.digests import TransactionDigest, tagged_hash
from soma.types.effects import (
    ChangedObject,
    EffectsObjectChange,
    ExecutionSuccess,
    IDOperation,
    ObjectInExist,
    ObjectOutWrite,
    SignedTransactionEffects,
    TransactionEffects,
)
from soma.types.object import AddressOwner, Object
from soma.types.signature_info import Ed25519QuorumSignInfo
from soma.types.tls import tls_identity
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin


def best_us_per_op(op: Callable[[], object], count: int, repeats: int) -> float:
    """Call `op` `count` times, `repeats` times over; the best time per call in µs.

    Results are discarded as they come, so the figure is the operation's own cost and
    not that of a growing heap the garbage collector keeps walking.
    """
    op()  # warm caches and lazily built codecs
    best = float("inf")
    loop = range(count)
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in loop:
            op()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def transfer_transaction() -> SignedTransaction:
    sender = AccountKeyPair.generate()
    coin = Object.new_coin(
        ObjectID.from_int(7), 1_000_000, AddressOwner(sender.address), TransactionDigest.zero()
    )
    data = TransactionData(
        kind=TransferCoin(coin.reference(), 10, SomaAddress.from_int(42)),
        sender=sender.address,
        gas_payment=coin.reference(),
        gas_budget=1_000,
        expiration=None,
    )
    return SignedTransaction.sign(data, sender)


def committee_of(n: int) -> tuple[Committee, list[AuthorityKeyPair]]:
    keys = [AuthorityKeyPair.generate() for _ in range(n)]
    network = [NetworkKeyPair.generate() for _ in range(n)]
    members = [
        CommitteeMember(
            name=k.name,
            stake=1,
            protocol_key=ProtocolKeyPair.generate().public_key,
            network_key=network[i].public_key,
            tls_certificate=tls_identity(network[i]).certificate_der,
            hostname=f"v{i}",
            network_address=f"127.0.0.1:{9000 + i}",
            consensus_address=f"127.0.0.1:{10000 + i}",
            p2p_address=f"127.0.0.1:{11000 + i}",
        )
        for i, k in enumerate(keys)
    ]
    committee = Committee.new(0, members)
    by_name = {k.name: k for k in keys}
    return committee, [by_name[m.name] for m in committee.members]


def sample_effects(tx: SignedTransaction) -> TransactionEffects:
    coin_ref = tx.data.gas_payment
    assert coin_ref is not None
    owner = AddressOwner(tx.data.sender)
    change = EffectsObjectChange(
        ObjectInExist(coin_ref.version, coin_ref.digest, owner),
        ObjectOutWrite(coin_ref.digest, owner),
        IDOperation.NONE,
    )
    return TransactionEffects(
        status=ExecutionSuccess(),
        executed_epoch=0,
        transaction_digest=tx.digest(),
        dependencies=(),
        changed_objects=(ChangedObject(coin_ref.object_id, change),),
        gas_object_index=0,
        gas_used=1_000,
        lamport_version=coin_ref.version + 1,
    )


def quorum_certificate(
    n: int, signers: int, effects: TransactionEffects
) -> tuple[Committee, Ed25519QuorumSignInfo]:
    committee, keys = committee_of(n)
    signed = [SignedTransactionEffects.sign(effects, k, 0) for k in keys[:signers]]
    cert = Ed25519QuorumSignInfo.from_signatures(committee, [s.auth_signature for s in signed])
    return committee, cert


def run(quick: bool) -> dict[str, float]:
    scale = 0.1 if quick else 1.0
    reps = 3 if quick else 7

    def n(count: int) -> int:
        return max(1, int(count * scale))

    results: dict[str, float] = {}
    tx = transfer_transaction()
    tx_bytes = tx.to_bytes()
    codec = SignedTransaction.bcs_codec()

    k = n(20_000)
    # Hashed values keep their bytes once encoded; drop that cache before each operation
    # so the figures are of real encoding and hashing, as for a freshly built value.
    state = tx.data.__dict__

    def drop_caches() -> None:
        state.pop("_bcs_bytes", None)
        state.pop("_digest", None)

    def encode_fresh() -> bytes:
        drop_caches()
        return encode(tx, codec)

    results["transfer_tx_encode"] = best_us_per_op(encode_fresh, k, reps)
    results["transfer_tx_decode"] = best_us_per_op(
        lambda: SignedTransaction.from_bytes(tx_bytes), k, reps
    )

    # TransactionData caches its bytes and digest per instance; this is the uncached
    # computation a validator does once per transaction: BCS-encode, then Blake2b-256.
    data_codec = TransactionData.bcs_codec()

    def digest_once() -> TransactionDigest:
        drop_caches()
        return TransactionDigest(tagged_hash("TransactionData", encode(tx.data, data_codec)))

    assert digest_once() == tx.digest()
    k = n(20_000)
    results["transaction_digest"] = best_us_per_op(digest_once, k, reps)

    key = AccountKeyPair.generate()
    msg = os.urandom(32)
    sig = key.sign(msg)
    k = n(5_000)
    results["ed25519_sign"] = best_us_per_op(lambda: key.sign(msg), k, reps)
    results["ed25519_verify"] = best_us_per_op(lambda: key.public_key.verify(msg, sig), k, reps)
    k = n(5_000)
    results["user_tx_verify"] = best_us_per_op(tx.verify, k, reps)

    effects = sample_effects(tx)
    intent, data = TransactionEffects.INTENT, effects.to_bytes()
    for total, signers in ((4, 3), (100, 67)):
        committee, cert = quorum_certificate(total, signers, effects)

        def verify_cert(c: Committee = committee, q: Ed25519QuorumSignInfo = cert) -> None:
            q.verify(c, intent, data)

        k = n(2_000 if total == 4 else 100)
        results[f"quorum_verify_{signers}_of_{total}"] = best_us_per_op(verify_cert, k, reps)

    results.update(rocksdb_figures(n, reps))
    return results


def rocksdb_figures(n: Callable[[int], int], reps: int) -> dict[str, float]:
    """Batch writes of 100 keys (32-byte values) and point reads of existing keys."""
    spec = TableSpec("objects", U64_BE, BytesCodec())
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as path, Database.open_rocksdb(path, [spec]) as db:
        table = db.table(spec)
        value = os.urandom(32)
        per_batch = 100
        keys = itertools.count()

        def write_batch(sync: bool) -> None:
            batch = db.batch()
            for _ in range(per_batch):
                batch.put(table, next(keys), value)
            db.write(batch, sync=sync)

        results["rocksdb_batch_write_100_keys"] = best_us_per_op(
            lambda: write_batch(False), n(200), reps
        )
        results["rocksdb_batch_write_100_keys_synced"] = best_us_per_op(
            lambda: write_batch(True), n(50), reps
        )
        written = next(keys)
        rng = random.Random(1)
        read_keys = itertools.cycle([rng.randrange(written) for _ in range(10_000)])
        results["rocksdb_point_read"] = best_us_per_op(
            lambda: table.get(next(read_keys)), n(50_000), reps
        )
        chunks = itertools.cycle([[rng.randrange(written) for _ in range(100)] for _ in range(100)])
        results["rocksdb_multi_get_100"] = best_us_per_op(
            lambda: table.multi_get(next(chunks)), n(1_000), reps
        )
    return results


LABELS = {
    "transfer_tx_encode": "encode TransferCoin transaction (signed, BCS)",
    "transfer_tx_decode": "decode TransferCoin transaction (signed, BCS)",
    "transaction_digest": "transaction digest (BCS encode + Blake2b-256)",
    "ed25519_sign": "Ed25519 sign (32-byte message)",
    "ed25519_verify": "Ed25519 verify",
    "user_tx_verify": "verify signed transaction (shape + signature)",
    "quorum_verify_3_of_4": "verify quorum signature 3-of-4",
    "quorum_verify_67_of_100": "verify quorum signature 67-of-100",
    "rocksdb_batch_write_100_keys": "RocksDB batch write, 100 keys (per batch)",
    "rocksdb_batch_write_100_keys_synced": "RocksDB batch write, 100 keys, synced (per batch)",
    "rocksdb_point_read": "RocksDB point read",
    "rocksdb_multi_get_100": "RocksDB multi-get of 100 keys (per call)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    args = parser.parse_args()
    results = run(args.quick)
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in results.items()}))
        return
    print(
        f"soma micro-benchmarks ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs)"
    )
    print(f"{'operation':<56} {'µs/op':>10}")
    for name, value in results.items():
        print(f"{LABELS.get(name, name):<56} {value:>10.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
