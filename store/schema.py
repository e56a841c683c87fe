"""The store's schema: the tables the follower writes, and the versioned migrations that create them.

One schema for both backends. A migration is fixed SQL text, written once and never edited (a database that ran it
must stay what it describes); the few type names that differ between the dialects are placeholders:

``{bigint}`` INTEGER in SQLite (64-bit), BIGINT in PostgreSQL;
``{dec}``    an exact decimal: TEXT in SQLite (it has no exact decimal type; NUMERIC affinity would turn "1.10"
             into a float), NUMERIC in PostgreSQL;
``{bool}``   INTEGER 0/1 in SQLite, BOOLEAN in PostgreSQL.

Prices and quantities are stored as the exact decimal text the engine's integers stand for ("100.25", "0.0150"),
so any SQL client reads them as the clients saw them; the trades table also keeps the integers (ticks and lots),
on which the 24-hour statistics are computed exactly with the same SQL on both backends. Times are integer
nanoseconds since the epoch (UTC), the engine's own timestamps; the tools show them in the venue's time zone.

Money (migration 2): the trades' fee columns are filled from the fills' fees, and ``balances`` (per account and
asset) and ``positions`` (per account and instrument) hold the ledger's figures as of the journal position the store
has reached, as exact decimal text of the asset (USD "1000.250000", BTC "0.50000000") and of the instrument's
quantity. Several shards (migration 3): a store following a multi-shard venue's command streams keeps one
``store_position`` row per shard, each moved in the transaction of that shard's rows; a venue of one log has one
row, shard 0. Adding a table later is one more :class:`Migration` at the end of :data:`MIGRATIONS` and one more
:class:`Table` the follower's row builder fills.
"""

from __future__ import annotations

from dataclasses import dataclass

DIALECT_TYPES = {
    "sqlite": {"bigint": "INTEGER", "dec": "TEXT", "bool": "INTEGER"},
    "postgresql": {"bigint": "BIGINT", "dec": "NUMERIC", "bool": "BOOLEAN"},
}


@dataclass(frozen=True, eq=False)  # hashed by identity: a dict key on the hot path, ~20 fields to hash otherwise
class Table:
    """A table the follower writes: ``key`` set (a column, or a tuple of columns for a composite key) means rows
    replace the row with the same key (upsert), except for the ``keep`` columns, which keep the value first written;
    without a key, rows are only ever inserted."""

    name: str
    columns: tuple[str, ...]
    key: str | tuple[str, ...] | None = None
    keep: tuple[str, ...] = ()

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else self.key or ()

    @property
    def conflict(self) -> str:
        """The key as an ON CONFLICT target: ``account, asset``."""
        return ", ".join(self.key_columns)

    @property
    def updated(self) -> tuple[str, ...]:
        """The columns an upsert overwrites."""
        return tuple(c for c in self.columns if c not in self.key_columns and c not in self.keep)


ORDERS = Table(
    "orders",
    ("order_id", "owner", "account", "symbol", "side", "ord_type", "tif", "post_only", "clordid", "price", "qty",
     "leaves", "cum", "avg_px", "status", "reason", "created_ns", "updated_ns", "last_exec_id"),
    key="order_id",
    # What never changes is not rewritten: an upsert that sets an indexed column updates that index too.
    keep=("owner", "account", "symbol", "side", "ord_type", "tif", "post_only", "created_ns"),
)  # fmt: skip
EXECUTIONS = Table(
    "executions",
    ("exec_id", "order_id", "owner", "account", "symbol", "side", "clordid", "orig_clordid", "exec_type", "status",
     "price", "qty", "leaves", "cum", "avg_px", "last_qty", "last_px", "trade_id", "aggressor", "reason", "ts_ns",
     "position"),
)  # fmt: skip
TRADES = Table(
    "trades",
    ("trade_id", "symbol", "price", "qty", "price_ticks", "qty_lots", "aggressor",
     "buy_order_id", "buy_owner", "buy_account", "buy_clordid", "buy_exec_id",
     "sell_order_id", "sell_owner", "sell_account", "sell_clordid", "sell_exec_id",
     "buy_fee", "sell_fee", "fee_asset", "ts_ns", "position"),
)  # fmt: skip
INSTRUMENTS = Table("instruments", ("symbol", "tick_size", "lot_size"), key="symbol")
BALANCES = Table("balances", ("account", "asset", "available", "held", "updated_ns"), key=("account", "asset"))
POSITIONS = Table(
    "positions", ("account", "symbol", "net", "cost", "realized", "fees", "quote_asset", "updated_ns"),
    key=("account", "symbol"),
)  # fmt: skip


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str

    def statements(self, dialect: str) -> list[str]:
        text = self.sql.format(**DIALECT_TYPES[dialect])
        return [s.strip() for s in text.split(";") if s.strip()]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "orders, executions, trades, instruments and the follower's journal position",
        """
        CREATE TABLE store_position (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            position {bigint} NOT NULL,        -- journal position after the last record written (a byte offset)
            records {bigint} NOT NULL,         -- commands the engine has processed up to there
            last_record {bigint},              -- position of that last record, and its CRC-32: at start-up the
            last_crc {bigint},                 -- follower checks that the journal still holds it
            updated_ns {bigint} NOT NULL
        );
        INSERT INTO store_position (id, position, records, updated_ns) VALUES (1, 0, 0, 0);

        CREATE TABLE instruments (
            symbol TEXT PRIMARY KEY,
            tick_size {dec} NOT NULL,           -- price = price_ticks x tick_size
            lot_size {dec} NOT NULL             -- qty = qty_lots x lot_size
        );

        CREATE TABLE orders (                  -- one row per accepted order, in its current state
            order_id {bigint} PRIMARY KEY,     -- the venue's OrderID (37)
            owner TEXT NOT NULL,               -- the session (CompID) that entered it
            account TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,                -- BUY | SELL
            ord_type TEXT NOT NULL,            -- LIMIT | MARKET
            tif TEXT NOT NULL,                 -- DAY | GTC | IOC | FOK
            post_only {bool} NOT NULL,
            clordid TEXT NOT NULL,             -- the latest ClOrdID (a cancel or replace request's)
            price {dec},                       -- NULL for a market order
            qty {dec} NOT NULL,
            leaves {dec} NOT NULL,
            cum {dec} NOT NULL,
            avg_px {dec} NOT NULL,
            status TEXT NOT NULL,              -- NEW | PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
            reason TEXT,                       -- why it was cancelled or expired (engine.types.Reason code)
            created_ns {bigint} NOT NULL,
            updated_ns {bigint} NOT NULL,
            last_exec_id {bigint} NOT NULL
        );
        CREATE INDEX orders_account_created ON orders (account, created_ns);
        CREATE INDEX orders_symbol_created ON orders (symbol, created_ns);
        CREATE INDEX orders_created ON orders (created_ns);

        CREATE TABLE executions (              -- one row per ExecutionReport-worthy event (not status answers)
            exec_id {bigint} PRIMARY KEY,      -- ExecID (17): one venue-wide sequence
            order_id {bigint},                 -- NULL for a rejected order (the venue gave it no OrderID)
            owner TEXT NOT NULL,
            account TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            clordid TEXT NOT NULL,
            orig_clordid TEXT,
            exec_type TEXT NOT NULL,           -- NEW | TRADE | CANCELED | REPLACED | EXPIRED | REJECTED
            status TEXT NOT NULL,
            price {dec},                       -- NULL for a market order (and prices of an unknown symbol)
            qty {dec},
            leaves {dec},
            cum {dec},
            avg_px {dec},
            last_qty {dec},                    -- the fill of a TRADE, else NULL
            last_px {dec},
            trade_id {bigint},
            aggressor {bool},                  -- a TRADE: whether this order was the incoming one
            reason TEXT,                       -- reject, cancel or expiry reason (engine.types.Reason code)
            ts_ns {bigint} NOT NULL,
            position {bigint} NOT NULL         -- journal position of the command that caused it
        );
        CREATE INDEX executions_order ON executions (order_id);
        CREATE INDEX executions_account_ts ON executions (account, ts_ns);

        CREATE TABLE trades (                  -- one row per trade, both sides
            trade_id {bigint} PRIMARY KEY,
            symbol TEXT NOT NULL,
            price {dec} NOT NULL,
            qty {dec} NOT NULL,
            price_ticks {bigint} NOT NULL,
            qty_lots {bigint} NOT NULL,
            aggressor TEXT NOT NULL,           -- BUY | SELL: the side of the incoming order
            buy_order_id {bigint} NOT NULL,
            buy_owner TEXT NOT NULL,
            buy_account TEXT NOT NULL,
            buy_clordid TEXT NOT NULL,
            buy_exec_id {bigint} NOT NULL,
            sell_order_id {bigint} NOT NULL,
            sell_owner TEXT NOT NULL,
            sell_account TEXT NOT NULL,
            sell_clordid TEXT NOT NULL,
            sell_exec_id {bigint} NOT NULL,
            buy_fee {dec},                     -- fees: NULL until the accounts ledger charges them
            sell_fee {dec},
            fee_asset TEXT,
            ts_ns {bigint} NOT NULL,
            position {bigint} NOT NULL
        );
        CREATE INDEX trades_symbol_ts ON trades (symbol, ts_ns);
        CREATE INDEX trades_ts ON trades (ts_ns);
        CREATE INDEX trades_buy_account_ts ON trades (buy_account, ts_ns);
        CREATE INDEX trades_sell_account_ts ON trades (sell_account, ts_ns)
        """,
    ),
    Migration(
        2,
        "balances and positions of the accounts ledger",
        """
        CREATE TABLE balances (                -- one row per account and asset it has held: the ledger as of the
            account TEXT NOT NULL,             -- store's journal position (the venue's fee account is a row too)
            asset TEXT NOT NULL,
            available {dec} NOT NULL,          -- free to trade or withdraw
            held {dec} NOT NULL,               -- held by working orders
            updated_ns {bigint} NOT NULL,      -- time of the last command that changed it
            PRIMARY KEY (account, asset)
        );

        CREATE TABLE positions (               -- one row per account and instrument it has traded
            account TEXT NOT NULL,
            symbol TEXT NOT NULL,
            net {dec} NOT NULL,                -- bought minus sold, in the instrument's quantity
            cost {dec} NOT NULL,               -- cost basis of the open position (average cost), in quote_asset
            realized {dec} NOT NULL,           -- realized PnL, fees included, in quote_asset
            fees {dec} NOT NULL,               -- fees paid, maker rebates negative, in quote_asset
            quote_asset TEXT NOT NULL,
            updated_ns {bigint} NOT NULL,
            PRIMARY KEY (account, symbol)
        )
        """,
    ),
    Migration(
        3,
        "the follower's position per shard (a venue's several command streams into one database)",
        """
        CREATE TABLE store_position_by_shard (
            shard INTEGER PRIMARY KEY,         -- the log followed: 0 the journal, or the first (or only) shard's
            position {bigint} NOT NULL,        -- command stream, k the k-th shard's (in config order, from 0)
            records {bigint} NOT NULL,
            last_record {bigint},
            last_crc {bigint},
            updated_ns {bigint} NOT NULL
        );
        INSERT INTO store_position_by_shard (shard, position, records, last_record, last_crc, updated_ns)
            SELECT 0, position, records, last_record, last_crc, updated_ns FROM store_position;
        DROP TABLE store_position;
        ALTER TABLE store_position_by_shard RENAME TO store_position
        """,
    ),
)
LATEST = MIGRATIONS[-1].version

BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_ns {bigint} NOT NULL
)"""
