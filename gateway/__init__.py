"""The venue's FIX 4.4 order-entry and market-data gateway (a QuickFIX acceptor)."""
