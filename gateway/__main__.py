"""``python -m gateway serve ...``: the same as ``fixgw serve ...`` (kept for scripts that name the module)."""

from tools.cli import main

raise SystemExit(main())
