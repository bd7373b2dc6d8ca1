"""``python -m lowrank_ode`` is the ``lowrank-ode`` command."""

from .cli import main

raise SystemExit(main())
