"""The order-entry edge in one process: what a NewOrderSingle costs between QuickFIX and the socket, in CPU.

    python -m bench.edge_bench [--orders 20000] [--reps 5]

For each order: ``fields_of`` (the message read whole), ``OrderTranslator.new_order``, the engine, and for each
ExecutionReport ``execution_report`` and the parse into the reused ``quickfix.Message`` that the gateway hands to
QuickFIX (with the dictionary for a report that carries a group, as ``gateway.server`` does). The flow alternates
buys and sells over 50 prices, so about half the orders trade. Reported: CPU time per order (``process_time``, so
other processes on a busy machine count less than in wall time), best of ``--reps``, for orders without and with a
two-entry Parties block. Compare two trees by running it from each (same interpreter), alternately.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import _quickfix as _qf
import quickfix as fix

from engine import Execution, MatchingEngine
from gateway.config import load_config
from gateway.orders import OrderTranslator, fields_of

ROOT = Path(__file__).resolve().parent.parent
PARTIES = "453=2|448=TRADER 7|447=D|452=11|448=CL-9|447=D|452=3|"


def messages(n: int, dictionary: fix.DataDictionary, parties: bool) -> list[fix.Message]:
    """``n`` NewOrderSingles as QuickFIX hands them to the application (parsed with the dictionary)."""
    out = []
    for i in range(n):
        body = (
            f"35=D|49=CLIENT1|56=EXCH|34={i + 2}|52=20260101-00:00:00.000|11=c{i}|1=ACC1|55=AAPL|54={1 + i % 2}|"
            f"38=5|40=2|44={100 + (i % 50) / 100:.2f}|59=0|60=20260101-00:00:00.000|{PARTIES if parties else ''}"
        ).replace("|", "\x01")
        head = f"8=FIX.4.4\x019={len(body)}\x01"
        msg = fix.Message()
        msg.setString(f"{head}{body}10={sum((head + body).encode()) % 256:03d}\x01", True, dictionary)
        out.append(msg)
    return out


def run(orders: list[fix.Message], dictionary: fix.DataDictionary) -> float:
    """CPU seconds for the edge's work on ``orders``."""
    cfg = load_config(ROOT / "config" / "venue.toml")
    engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    translator = OrderTranslator({i.symbol: i for i in cfg.instruments})
    report, accounts = fix.Message(), frozenset({"ACC1"})
    gc.collect()
    gc.disable()
    start = time.process_time()
    for n, msg in enumerate(orders):
        cmd, echo = translator.new_order(fields_of(msg), "CLIENT1", accounts, n)
        for event in engine.process(cmd):
            if type(event) is Execution:
                text = translator.execution_report(event, echo)
                if type(text) is str:
                    _qf.Message_setString(report, text, False)
                else:  # GroupedText
                    _qf.Message_setString(report, text, False, dictionary)
    elapsed = time.process_time() - start
    gc.enable()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    dictionary = fix.DataDictionary(str(ROOT / "fix_specs" / "FIX44-venue.xml"))
    print(f"{ROOT}: CPU µs per order, best of {args.reps} x {args.orders:,} orders")
    for parties in (False, True):
        orders = messages(args.orders, dictionary, parties)
        best = min(run(orders, dictionary) for _ in range(args.reps))
        print(f"  {'with' if parties else 'without'} Parties: {best / args.orders * 1e6:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
