"""Market data: subscriptions, W snapshots and X incrementals with per-view RptSeq, and the reference client."""
