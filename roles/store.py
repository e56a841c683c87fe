"""The store role: the post-trade store following the cluster's command stream.

``fixgw serve --role store --name s1 --config venue.toml`` is ``fixgw store`` (:mod:`store.service`) with the shard's
command stream in place of the local journal (:class:`~seqlog.jetstream.JetStreamLogReader`); it writes the venue's
configured database (``[store]``), so ``fixgw trades``, ``orders`` and ``stats`` with the same config read it.

* **Commands, not results.** It follows the command stream and replays the deterministic engine, as the one-process
  store replays the journal. The result stream would spare that CPU (~5-10 us per command), but the store's
  ``balances`` and ``positions`` rows are read from its own engine's ledger at the end of each batch, and no event
  carries them; commands also keep one follower, one position scheme and one exactly-once mechanism for both venues.
* **Exactly once.** Its position (``stream sequence << 16 | index in the message``) moves in the same transaction as
  the rows, as in one process; a kill -9 at any moment restarts at a batch boundary. A second store on the same
  database waits on its lock: a hot standby.
* It needs no engine: it reads only stored commands, from any server of the cluster, and keeps running through a
  server's loss (the reader's connection reconnects; errors restart the follower from the committed position).
  Engine snapshots of the cluster are not used yet: a start replays the stream from its beginning.
"""

from __future__ import annotations

from gateway.config import VenueConfig
from roles.config import ClusterConfig, data_dir
from seqlog import LogReader
from seqlog.jetstream import JetStreamLogReader


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    from store.service import serve_store

    def open_reader() -> LogReader:
        return JetStreamLogReader(cluster.servers, cluster.commands)

    # Snapshots would have to be taken at positions of the command stream: this store's own directory, empty today.
    return serve_store(cfg, open_reader=open_reader, snapshot_dir=data_dir(cfg, name) / "snapshots")
