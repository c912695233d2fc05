"""`python -m risk_tui` is `risk-tui`."""

from risk_tui.cli import main

raise SystemExit(main())
