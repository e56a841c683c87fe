"""``python -m feeds``: the reference market-data client (same as ``python -m feeds.client``)."""

import sys

from feeds.client import main

sys.exit(main())
