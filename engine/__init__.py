"""The venue's matching engine: pure, deterministic, integer ticks and lots. Commands in, events out."""

from engine.book import BBO, LevelView, OrderBook
from engine.commands import (
    CancelOrder,
    Command,
    ExpireDayOrders,
    MassCancel,
    NewOrder,
    QueryOrder,
    ReplaceOrder,
)
from engine.engine import MatchingEngine
from engine.events import (
    BookUpdate,
    CancelReject,
    Event,
    Execution,
    MarketDataEvent,
    MassCancelReport,
    Stat,
    StatUpdate,
    TradePrint,
)
from engine.instruments import Instrument
from engine.order import Level, Order
from engine.types import (
    ExecType,
    OrdStatus,
    OrdType,
    Reason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

__all__ = [
    "BBO",
    "BookUpdate",
    "CancelOrder",
    "CancelReject",
    "Command",
    "Event",
    "ExecType",
    "Execution",
    "ExpireDayOrders",
    "Instrument",
    "Level",
    "LevelView",
    "MarketDataEvent",
    "MassCancel",
    "MassCancelReport",
    "MatchingEngine",
    "NewOrder",
    "OrdStatus",
    "OrdType",
    "Order",
    "OrderBook",
    "QueryOrder",
    "Reason",
    "ReplaceOrder",
    "SelfTradePrevention",
    "Side",
    "Stat",
    "StatUpdate",
    "TimeInForce",
    "TradePrint",
]
