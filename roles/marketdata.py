"""The market-data publisher role: the market-data sessions pinned to this process, fed by the result stream.

``fixgw serve --role md --name md1 --config venue.toml`` serves the sessions of ``[cluster.publishers.md1]`` with
the one-process venue's market-data service (:mod:`feeds.service`: the same subscriptions, snapshots, incremental
refresh, RptSeq, gap recovery and slow-consumer handling). Its books are :class:`~feeds.levelbook.LevelBook`\\ s
kept from the market-data events of every shard's result stream (an instrument's come from its shard's): each
event carries a level's new total or a statistic's new value and its RptSeq, so every publisher holds the engine's
levels and RptSeq exactly, and any number of publishers can share the sessions out. At start-up it reads the result
streams from their start before it accepts a
logon (subscriptions do not survive a restart of the publisher, as they do not survive one of the one-process
venue); then each result message's events are published once per engine command, as the one-process venue
publishes them after its group commit.
"""

from __future__ import annotations

from nats.aio.msg import Msg

from engine import BookUpdate, Imbalance, Indicative, PhaseChange, StatUpdate, TradePrint, TradingDayChange
from engine.eventcodec import decode_events
from feeds.levelbook import LevelBook
from feeds.service import MarketDataService
from gateway.config import VenueConfig
from gateway.server import run
from roles.config import ClusterConfig, ProcessSpec, ShardSpec
from roles.front import ClusterFront
from seqlog.jetstream import unpack

_MD_EVENTS = (BookUpdate, TradePrint, StatUpdate, Indicative, Imbalance, PhaseChange, TradingDayChange)


class MarketDataPublisher(ClusterFront):
    """The one-process gateway's market-data sessions, with books kept from the result stream."""

    role = "md"

    def __init__(self, cfg: VenueConfig, cluster: ClusterConfig, spec: ProcessSpec) -> None:
        super().__init__(cfg, cluster, spec)
        self.books = {i.symbol: LevelBook(i.symbol) for i in self.cfg.instruments}
        self.trading_date: str | None = None  # from the engine's TradingDayChange events
        self.feeds = MarketDataService(
            self.cfg.market_data, books=self.books, instruments=self.instruments, scheduler=self.scheduler,
            metrics=self.metrics, log=self.log, trading_date=lambda: self.trading_date,
        )  # fmt: skip

    def on_result(self, shard: ShardSpec, seq: int, msg: Msg) -> None:
        books, live = self.books, seq > self.replay_until[shard.name]  # before: nobody is subscribed yet
        for payload in unpack(msg.data):
            md = [ev for ev in decode_events(payload) if isinstance(ev, _MD_EVENTS)]
            if md:
                for ev in md:
                    if isinstance(ev, TradingDayChange):
                        self.trading_date = ev.trading_date
                    else:
                        books[ev.symbol].apply(ev)
                if live:
                    self.outbox.market_data.append(md)  # published at the end of the loop turn

    def start(self) -> None:
        self.connect_and_catch_up()
        self.start_metrics()
        self.feeds.start()
        self.going_live()


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    return run(MarketDataPublisher(cfg, cluster, cluster.process("md", name)))
