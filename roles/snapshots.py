"""Engine snapshots for the cluster, and what they let the command stream forget.

An engine that starts (a standby, a restarted engine) would otherwise replay the command stream from its start, and
the stream would grow forever. So the active engine writes its state (:func:`engine.snapshot.dump_state`) at
command message ``n`` every ``cluster.snapshot_every`` commands into a JetStream object store (``<prefix>_SNAPSHOTS``,
replicated like the streams) as the object ``engine-<shard>-<n>``; an engine starting up loads the one with the
highest ``n`` and follows the command stream from ``n + 1``. Names carry ``n`` so that nothing is overwritten: an
engine that was frozen while another took over, and uploads a snapshot it had started before, adds an older one,
which no engine picks.

* **Written off the engine's thread.** A forked child serialises the state (copy-on-write, as the one-process venue
  does, :mod:`gateway.journal`) into a file under the engine's data directory; the parent uploads the file.
* **Uploaded only once result ``n`` is in the result stream**: an engine that loads snapshot ``n`` never computes
  the results of commands up to ``n``, so they must already be stored (an engine that loses its lease before that
  drops the file).
* **Retention.** After storing snapshot ``n`` the engine purges the command stream below the *previous* snapshot
  (messages up to its sequence) and deletes the snapshots older than that one: the newest snapshot plus the
  commands after it always rebuild the engine, and an engine that is still loading the previous one finds the
  commands after it. Registered post-trade stores hold both back to what each needs to restart
  (:mod:`roles.storehold`). The result stream is not purged: a
  gateway reads it from its start at start-up (the ClOrdIDs of accepted orders, its sessions' missing reports) and a
  market-data publisher rebuilds its books from it; README "Scale-out" has the design that would trim it.

Besides the engine state, a snapshot holds ``stream_seq`` (the last command message applied), ``clock_seq`` (the
last clock message applied, :mod:`roles.engine`) and ``previous`` (the snapshot before it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Container
from pathlib import Path
from typing import Any

import nats.js.errors
import orjson
from nats.js import JetStreamContext, api
from nats.js.object_store import ObjectStore

from engine import MatchingEngine
from engine.snapshot import dump_state
from roles.config import ClusterConfig
from seqlog.jetstream import retry


def prefix(shard: str) -> str:
    """Snapshot objects of a shard's engine are ``engine-<shard>-<command sequence>``: shards share the bucket."""
    return f"engine-{shard}-"


def object_name(shard: str, seq: int) -> str:
    return f"{prefix(shard)}{seq:016d}"


async def stored(store: ObjectStore, shard: str) -> list[int]:
    """The command sequences of the shard's snapshots in the store, newest first."""
    mine = prefix(shard)
    try:
        infos = await retry(lambda: store.list(ignore_deletes=True), time.monotonic() + 30)
    except nats.js.errors.NotFoundError:
        return []
    names = [i.name for i in infos if i.name and i.name.startswith(mine) and not i.deleted]
    return sorted((int(n.removeprefix(mine)) for n in names), reverse=True)


async def open_store(js: JetStreamContext, cluster: ClusterConfig) -> ObjectStore:
    async def open_or_create() -> ObjectStore:
        try:
            return await js.object_store(cluster.snapshot_bucket)
        except nats.js.errors.BucketNotFoundError:
            config = api.ObjectStoreConfig(bucket=cluster.snapshot_bucket, replicas=cluster.replicas,
                                           storage=api.StorageType.FILE)  # fmt: skip
            return await js.create_object_store(cluster.snapshot_bucket, config=config)

    return await retry(open_or_create, time.monotonic() + 30)


async def load_latest(store: ObjectStore, shard: str) -> dict[str, Any] | None:
    """The newest snapshot of the shard's engine, or None if none was stored yet."""
    for seq in await stored(store, shard):
        try:
            found = await retry(lambda: store.get(object_name(shard, seq)), time.monotonic() + 30)  # noqa: B023
        except nats.js.errors.ObjectNotFoundError:
            continue  # deleted meanwhile: a newer one exists
        state: dict[str, Any] = orjson.loads(found.data or b"")
        return state
    return None


async def prune(store: ObjectStore, shard: str, keep: Container[int]) -> None:
    """Delete the shard's snapshots not in ``keep``."""
    for seq in await stored(store, shard):
        if seq not in keep:
            with contextlib.suppress(nats.js.errors.ObjectNotFoundError):
                await store.delete(object_name(shard, seq))


def fork_dump(engine: MatchingEngine, path: Path, meta: dict[str, int]) -> int:
    """Write the engine's state and ``meta`` to ``path`` from a forked child; returns the child's pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:  # child: serialise and leave without running any of the parent's cleanup (asyncio, NATS)
        code = 0
        try:
            state = dump_state(engine)
            state.update(meta)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(state))
            os.replace(tmp, path)
        except BaseException:
            code = 1
        os._exit(code)
    return pid
