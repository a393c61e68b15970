"""CPU per executed TransferCoin on one validator, consensus excluded.

    python bench/execution.py [--transfers N] [--accounts K] [--per-commit C] [--json]

One AuthorityState on RocksDB (a fresh temporary directory) is fed the transfers the
way consensus would hand them over (synthetic commits of `--per-commit` transactions).
Measured, in CPU seconds of this process (`time.process_time`), per transfer:

- validate: what `submit` checks (signature, expiry, inputs, balances);
- order+execute+store: the consensus handler (decode, dedup, shared versions, the epoch
  store batch), the transaction manager, execution, the write-back cache and its
  synced RocksDB flush, and the state accumulator;
- sign effects: what a validator returns to clients, a batch signature over the
  commit's effects (the Merkle root of their leaves, one Ed25519 signature), as the
  StreamEffects service sends them.

Ordering by consensus itself (blocks, network) is excluded: `soma bench consensus`
measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time

from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.state import AuthorityState, initialize_genesis, read_system_state
from soma.authority.store import AuthorityStore
from soma.authority.synthetic_commits import SyntheticCommits
from soma.consensus.local_committee import generate_committee
from soma.types.crypto import AccountKeyPair
from soma.types.genesis import (
    GenesisCoin,
    build_genesis_transaction,
    genesis_coin_id,
    validators_from_committee,
)
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin
from soma.utils.allocator import tune_allocator
from soma.utils.gc_tuning import tune_gc


async def run(transfers: int, accounts: int, per_commit: int) -> dict[str, object]:
    rng = random.Random(1)
    keys = [AccountKeyPair(rng.randbytes(32)) for _ in range(accounts)]
    addresses = [k.public_key.to_address() for k in keys]
    committee, validator_keys = generate_committee(4, seed=1)
    genesis = build_genesis_transaction(
        validators_from_committee(committee, addresses[:4]),
        [GenesisCoin(a, 10**15) for a in addresses],
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = AuthorityStore.open_rocksdb(os.path.join(tmp, "authority"))
        initialize_genesis(store, genesis)
        system = read_system_state(store)
        epoch_store = AuthorityPerEpochStore.open_rocksdb(
            os.path.join(tmp, "epoch-0"), system.committee(), system
        )
        state = AuthorityState(validator_keys[0].authority, store, epoch_store)
        await state.start(None)
        gas: list[ObjectRef] = []
        for i in range(accounts):
            obj = state.get_object(genesis_coin_id(i))
            assert obj is not None
            gas.append(obj.reference())
        fee = system.parameters.transaction_fee
        commits = SyntheticCommits()
        cpu = {
            "sign_tx_client_side": 0.0,
            "validate": 0.0,
            "order_execute_store": 0.0,
            "sign_effects": 0.0,
        }
        done = 0
        wall = time.perf_counter()
        while done < transfers:
            count = min(per_commit, transfers - done, accounts)
            senders = rng.sample(range(accounts), count)
            t0 = time.process_time()
            txs = []
            for s in senders:
                kind = TransferCoin(
                    gas[s], rng.randint(1, 1000), addresses[rng.randrange(accounts)]
                )
                txs.append(
                    SignedTransaction.sign(
                        TransactionData(kind, addresses[s], gas[s], 10 * fee, None), keys[s]
                    )
                )
            t1 = time.process_time()
            for tx in txs:
                state.validate_transaction(tx)
            t2 = time.process_time()
            subdag = commits.of_transactions(txs)
            await state.handle_commit(subdag)
            while state.accumulated_commit < subdag.index:
                await asyncio.sleep(0)
            t3 = time.process_time()
            batch = []
            for tx, s in zip(txs, senders, strict=True):
                effects = state.get_effects(tx.digest())
                assert effects is not None and effects.status.is_success(), effects
                batch.append(effects.to_bytes())
                new_gas = effects.gas_object()
                assert new_gas is not None
                gas[s] = new_gas
            # Reading the effects back above is the bench's work, not the validator's.
            t3b = time.process_time()
            state.sign_effects_batch(state.epoch, batch)
            t4 = time.process_time()
            cpu["sign_tx_client_side"] += t1 - t0
            cpu["validate"] += t2 - t1
            cpu["order_execute_store"] += t3 - t2
            cpu["sign_effects"] += t4 - t3b
            done += count
        wall = time.perf_counter() - wall
        await state.stop()
        epoch_store.close()
        store.close()
    per_tx = {k: round(v / transfers * 1e6, 1) for k, v in cpu.items()}
    validator_us = per_tx["validate"] + per_tx["order_execute_store"] + per_tx["sign_effects"]
    return {
        "transfers": transfers,
        "accounts": accounts,
        "per_commit": per_commit,
        "us_cpu_per_transfer_per_validator": round(validator_us, 1),
        "breakdown_us": {k: per_tx[k] for k in ("validate", "order_execute_store", "sign_effects")},
        "client_signing_us": per_tx["sign_tx_client_side"],
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transfers", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--per-commit", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.transfers < 1 or args.accounts < 1 or args.per_commit < 1:
        parser.error("--transfers, --accounts and --per-commit must be positive")
    tune_allocator()
    tune_gc()
    result = asyncio.run(run(args.transfers, args.accounts, args.per_commit))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['us_cpu_per_transfer_per_validator']} µs of CPU per executed TransferCoin "
        "per validator"
    )
    for name, value in result["breakdown_us"].items():  # type: ignore[attr-defined]
        print(f"  {name:>22}: {value} µs")
    print(
        f"  ({result['transfers']} transfers among {result['accounts']} accounts, "
        f"{result['wall_s']} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
