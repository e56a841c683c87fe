"""The store role: the post-trade store following the cluster's command stream.

``fixgw serve --role store --name s1 --config venue.toml`` is ``fixgw store`` (:mod:`store.service`) with the shards'
command streams in place of the local journal (:class:`~seqlog.jetstream.JetStreamLogReader`); it writes the venue's
configured database (``[store]``), so ``fixgw trades``, ``orders`` and ``stats`` with the same config read it.

* **Every shard, one process, one database.** One engine per shard (its instruments and id base, as
  :class:`roles.engine.EngineNode` builds it), a position per shard moved in the transaction of that shard's rows,
  balances summed over the shards' ledgers (:mod:`store.follower`), a registration per shard (:mod:`roles.storehold`).

* **Commands, not results.** It follows the command stream and replays the deterministic engine, as the one-process
  store replays the journal. The result stream would spare that CPU (~5-10 us per command), but the store's
  ``balances`` and ``positions`` rows are read from its own engine's ledger at the end of each batch, and no event
  carries them; commands also keep one follower, one position scheme and one exactly-once mechanism for both venues.
* **Exactly once.** Its position (``stream sequence << 16 | index in the message``) moves in the same transaction as
  the rows, as in one process; a kill -9 at any moment restarts at a batch boundary. A second store on the same
  database waits on its lock: a hot standby.
* It needs no engine: it reads only stored commands, from any server of the cluster, and keeps running through a
  server's loss (the reader's connection reconnects; errors restart the follower from the committed position).
* **It survives the stream's trimming.** Once it holds its database's lock it registers its position
  (:mod:`roles.storehold`), so the active engine keeps the newest engine snapshot at or before it and the commands
  after that; the store rebuilds its engine from that snapshot (downloaded into ``<data_dir>/<name>/snapshots``)
  plus those commands, then writes rows from its position on. A store whose start is no longer in the stream (a
  new store after a trim, one that was unregistered) is refused with one line: the rows before the trim exist only
  in other stores' databases, so it starts from a copy of a registered store's database instead.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from gateway.config import VenueConfig
from roles.config import ClusterConfig, ShardSpec, data_dir
from roles.snapshots import object_name, open_store, stored
from roles.storehold import UPDATE_EVERY, base_snapshot, first_needed, get, key, open_bucket, value
from seqlog.jetstream import JetStreamLogReader, position, retry, split
from store.db import StoreError
from store.follower import Source


def committed_message(pos: int) -> int:
    """The last command message whose records are all committed at store position ``pos``."""
    return max(split(pos)[0] - 1, 0)


class StoreStreamReader(JetStreamLogReader):
    """A shard's command stream for the store, registering the store's position in it
    (:class:`store.follower.Retention`)."""

    def __init__(self, cluster: ClusterConfig, name: str, snapshot_dir: Path, shard: ShardSpec | None = None) -> None:
        shard = shard or cluster.shards[0]
        super().__init__(cluster.servers, cluster.command_stream(shard.name))
        self.cluster, self.name, self.snapshot_dir = cluster, name, snapshot_dir
        self.shard = shard.name
        self.key = key(name, shard.name if len(cluster.shards) > 1 else None)
        self._held = -1  # the position registered last
        self._next_update = 0.0
        self._pending = -1  # a committed message not registered yet
        self._kv: KeyValue | None = None
        self._before: bytes | None = None  # the key's value before this run registered

    def starting(self, position_: int) -> None:
        self.pump.run(self._start(committed_message(position_)), 120)

    async def _start(self, seq: int) -> None:
        js = await self.jetstream()
        self._kv = kv = await open_bucket(js, self.cluster)
        before = await retry(lambda: get(kv, self.key), time.monotonic() + 30)
        await retry(lambda: kv.put(self.key, value(self.shard, seq)), time.monotonic() + 30)
        self._held = seq  # registered before the stream is looked at: a trim from now on keeps what we need
        # The stream's state before the snapshots' list: the engine stores a snapshot before it trims to it, so the
        # list then holds every snapshot a trim seen here kept. (Listed first, a snapshot at or before ``seq`` stored
        # and trimmed to in between made a registered store look trimmed past: refused.)
        state = (await retry(lambda: js.stream_info(self.spec.name), time.monotonic() + 30)).state
        objects = await open_store(js, self.cluster)
        base = base_snapshot(await stored(objects, self.shard), seq)
        for old in self.snapshot_dir.glob("snapshot-*.json"):
            old.unlink()
        if base:  # named as the follower expects: the position of the record after the snapshot's last one
            found = await retry(lambda: objects.get(object_name(self.shard, base)), time.monotonic() + 60)
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.snapshot_dir / "snapshot.tmp"
            tmp.write_bytes(found.data or b"")
            tmp.replace(self.snapshot_dir / f"snapshot-{position(base + 1)}.json")
        need = first_needed(base, seq)
        self._before = before
        if state.first_seq > need:  # refused: a store that cannot run must not hold the stream back
            await self._restore()
            where = f"command message {seq}" if seq else "the stream's start (a new store)"
            raise StoreError(
                f"the command stream {self.spec.name} no longer holds message {need}, which store {self.name} needs "
                f"to rebuild its engine at {where} from snapshot {base or 'none'}; it holds messages "
                f"{state.first_seq}..{state.last_seq}: start this store from a copy of a registered store's database "
                "(README 'Scale-out')"
            )

    async def _restore(self) -> None:
        """Put back the registration :meth:`starting` replaced (none: delete the key)."""
        kv, before = self._kv, self._before
        assert kv is not None
        self._held = -1
        if before is None:
            await retry(lambda: kv.delete(self.key), time.monotonic() + 30)
        else:
            await retry(lambda: kv.put(self.key, before), time.monotonic() + 30)

    def withdraw(self) -> None:
        if self._held >= 0:
            self.pump.run(self._restore(), 60)

    def committed(self, position_: int) -> None:
        self._pending = committed_message(position_)
        if time.monotonic() >= self._next_update:
            self._register()

    def wait(self, position_: int, timeout: float) -> bool:
        if self._pending > self._held and time.monotonic() >= self._next_update:
            self._register()  # idle: what the last commits moved is registered within a second
        return super().wait(position_, timeout)

    def _register(self) -> None:
        seq, kv = self._pending, self._kv
        if seq <= self._held or kv is None:
            return
        self.pump.run(kv.put(self.key, value(self.shard, seq)), 30)
        self._held, self._next_update = seq, time.monotonic() + UPDATE_EVERY

    def close(self) -> None:
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, TimeoutError, RuntimeError):
            self._register()  # a clean stop: hold no more than needed
        super().close()


def sources(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> list[Source]:
    """Every shard's command stream, with the engine its engines start with (:class:`roles.engine.EngineNode`)."""
    out = []
    for shard in cluster.shards:
        snapshot_dir = data_dir(cfg, name) / "snapshots"
        if len(cluster.shards) > 1:
            snapshot_dir /= shard.name
        instruments = [i for i in cfg.instruments if i.symbol in shard.symbols]
        reader = StoreStreamReader(cluster, name, snapshot_dir, shard)
        out.append(Source(shard.index, reader, snapshot_dir, instruments, shard.id_base))
    return out


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    from store.service import serve_store

    return serve_store(cfg, open_sources=lambda: sources(cfg, cluster, name))
