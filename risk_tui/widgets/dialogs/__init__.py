"""The desk's modal dialogs: liquidate, schedule auto-liquidation, message, remark."""

from risk_tui.widgets.dialogs.auto_liquidation import AutoLiquidationDialog
from risk_tui.widgets.dialogs.base import DialogScreen, NotPermitted, ReviewedDialog
from risk_tui.widgets.dialogs.liquidate import LiquidateDialog
from risk_tui.widgets.dialogs.message import MessageDialog
from risk_tui.widgets.dialogs.remark import RemarkDialog

__all__ = [
    "AutoLiquidationDialog",
    "DialogScreen",
    "LiquidateDialog",
    "MessageDialog",
    "NotPermitted",
    "RemarkDialog",
    "ReviewedDialog",
]
