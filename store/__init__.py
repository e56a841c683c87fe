"""The post-trade store: a process that follows the command journal into a SQL database (SQLite or PostgreSQL).

It replays the deterministic engine from the journal and writes orders, executions and trades, committing its
journal position in the same transaction as the rows; the query tools and the 24-hour statistics read the database.
Modules: ``schema`` (tables, migrations), ``db`` (the backend interface), ``sqlite`` and ``postgres``, ``rows``
(events to rows), ``follower`` (the loop), ``service`` (the process), ``http`` (read-only JSON), ``queries`` and
``stats`` (what the tools ask), ``cli`` (the commands), ``process`` (how ``fixgw serve`` starts it).
"""
