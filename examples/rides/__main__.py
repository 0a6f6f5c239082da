"""`python -m examples.rides`: see `run.py`."""

from .run import main

raise SystemExit(main())
