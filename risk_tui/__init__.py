"""risk-tui: the terminal dashboard of a securities broker's margin-call risk desk."""

__version__ = "0.1.0"
