"""Reusable widgets: the live table (and, in sibling modules, bars, indicators and modals)."""

from risk_tui.widgets.live_table import Column, LiveTable, RowData, RowFilter

__all__ = ["Column", "LiveTable", "RowData", "RowFilter"]
