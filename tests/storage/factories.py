"""Kept only for `tests/feed/test_gateway.py`, which the gateway split is rewriting: the
factories are `tests/factories.py`. Delete this file once that test imports from there."""

from tests.factories import account_state, make_call

__all__ = ["account_state", "make_call"]
