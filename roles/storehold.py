"""What the command stream keeps for the post-trade stores: each store's position in a key-value bucket.

A store (:mod:`roles.store`) rebuilds its engine at its committed position from the newest engine snapshot at or
before it plus the commands after that snapshot, then writes rows from its position on. So when the active engine
trims the command stream behind its snapshots (:mod:`roles.snapshots`), it must keep, for every store, the newest
snapshot at or before the store's position and the commands from that snapshot's message on (that message itself
too: a store whose position is the snapshot's re-reads its last record there to check the stream is the one it
followed).

* **Registration.** Each store, once it holds its database's lock, writes the key ``store-<name>`` of the bucket
  ``<prefix>_STORES`` (replicated like the streams, no expiry, one revision kept) with its shard and the last
  command message whose records it has all committed; it moves it forward at most once a second and when it stops.
  With several shards a store follows each and holds one key per shard, ``store-<name>.<shard>``: each shard's
  engine reads the positions in its own shard's stream only, so the retention rule below stays per stream.
  A hot standby on the same database shares the name: only the store holding the lock writes.
* **Unregistration** is deleting the key (``nats kv del FIXGW_STORES store-s1``, or
  ``python -m roles.storehold --config venue.toml --unregister s1``): the engine's next snapshot trims as if the
  store never existed. Keys never expire: a post-trade store that is down (a weekend, a broken disk) must not
  silently lose the trades it has not written yet; the stream's growth while it is down is the price, bounded by
  the operator's decision to unregister it.
* **Failing closed.** An engine that cannot read the bucket does not trim this time.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable
from typing import Any

import nats.js.errors
import orjson
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from roles.config import ClusterConfig
from seqlog.jetstream import retry

PREFIX = "store-"
UPDATE_EVERY = 1.0  # seconds between two moves of a running store's key


def key(name: str, shard: str | None = None) -> str:
    """Store ``name``'s key: ``store-<name>`` in a venue of one shard, ``store-<name>.<shard>`` per shard with
    several (a store follows every shard, and each shard's engine reads only the keys of its shard)."""
    return f"{PREFIX}{name}" if shard is None else f"{PREFIX}{name}.{shard}"


def value(shard: str, seq: int) -> bytes:
    return orjson.dumps({"shard": shard, "seq": seq})


async def open_bucket(js: JetStreamContext, cluster: ClusterConfig) -> KeyValue:
    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(cluster.store_bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(bucket=cluster.store_bucket, history=1, replicas=cluster.replicas)

    return await retry(open_or_create, time.monotonic() + 30)


async def registrations(js: JetStreamContext, kv: KeyValue, bucket: str) -> dict[str, dict[str, Any]]:
    """Every registered store key of the bucket and its value.

    The keys come from the bucket stream's subjects (``STREAM.INFO`` with a subject filter: the server's own count
    of the subjects that hold a message), not from ``kv.keys()``. That one watches the bucket through a consumer and
    can end before the consumer has delivered anything (it asks the consumer's pending count while the messages are
    on their way): no keys, and an engine trimmed as if no store were registered, purging what a store needed (a
    trim past the store's base in ``tests/test_cluster_store_shards.py``, 1 run in 6 on a loaded machine). A deleted
    key keeps its subject (the delete marker) and is left out."""
    head = f"$KV.{bucket}."
    info = await retry(lambda: js.stream_info(f"KV_{bucket}", subjects_filter=f"{head}>"), time.monotonic() + 10)
    out: dict[str, dict[str, Any]] = {}
    for subject in info.state.subjects or {}:
        k = subject.removeprefix(head)
        if not k.startswith(PREFIX):
            continue
        found = await retry(lambda: get(kv, k), time.monotonic() + 10)  # noqa: B023
        if found:  # (None: unregistered)
            out[k] = orjson.loads(found)
    return out


async def positions(js: JetStreamContext, kv: KeyValue, bucket: str, shard: str) -> dict[str, int]:
    """The registered stores of ``shard`` and their positions (the last command message each has committed)."""
    return {k.removeprefix(PREFIX).removesuffix(f".{shard}"): int(held["seq"])
            for k, held in (await registrations(js, kv, bucket)).items() if held.get("shard") == shard}  # fmt: skip


async def get(kv: KeyValue, k: str) -> bytes | None:
    """The value of key ``k``, None if there is none (the client raises for that: not something to retry)."""
    try:
        return (await kv.get(k)).value
    except nats.js.errors.KeyNotFoundError:
        return None


def base_snapshot(snapshots: Iterable[int], seq: int) -> int:
    """The newest snapshot at or before command message ``seq`` (0: none, replay from the stream's start)."""
    return max((s for s in snapshots if s <= seq), default=0)


def first_needed(base: int, seq: int) -> int:
    """The first command message a store at ``seq`` rebuilding from snapshot ``base`` reads."""
    return max(1, min(base + 1, seq))


def retention(previous: int, snapshots: Iterable[int], stores: Iterable[int]) -> tuple[int, set[int]]:
    """(first command message to keep, snapshots to keep) once a snapshot after ``previous`` is stored: the engine's
    own needs (``previous`` and the commands after it) and each registered store's (at position ``seq``: its base
    snapshot and the commands from that snapshot's message on)."""
    snapshots = list(snapshots)
    first, keep = previous + 1, {s for s in snapshots if s >= previous}
    for seq in stores:
        base = base_snapshot(snapshots, seq)
        first = min(first, max(base, 1))
        if base:
            keep.add(base)
    return first, keep


def main(argv: list[str] | None = None) -> int:
    """``python -m roles.storehold --config venue.toml [--unregister NAME]``: list (or unregister) the stores."""
    from gateway.logs import configure_logging
    from roles.config import load
    from seqlog.jetstream import connect

    parser = argparse.ArgumentParser(prog="python -m roles.storehold", description=main.__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--unregister", metavar="NAME", help="delete store NAME's key: the stream stops holding")
    args = parser.parse_args(argv)
    configure_logging()  # the NATS client's lines to stderr: stdout is the answer
    _, cluster = load(args.config)

    async def run() -> int:
        nc = await connect(cluster.servers, "fixgw-storehold")
        try:
            js = nc.jetstream()
            kv = await open_bucket(js, cluster)
            if args.unregister:
                several = len(cluster.shards) > 1
                for k in [key(args.unregister, s.name) for s in cluster.shards] if several else [key(args.unregister)]:
                    await retry(lambda k=k: kv.delete(k), time.monotonic() + 10)  # type: ignore[misc]
                print(f"store {args.unregister} unregistered")
                return 0
            for shard in cluster.shards:
                for name, seq in sorted((await positions(js, kv, cluster.store_bucket, shard.name)).items()):
                    print(f"store {name}: shard {shard.name}, command message {seq}")
            return 0
        finally:
            await nc.close()

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
