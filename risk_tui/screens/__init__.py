"""Screens of the desk: one module per tab, plus the details of a call."""
