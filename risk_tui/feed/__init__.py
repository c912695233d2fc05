"""Talking to the broker: FEED.md wire models, the poller, the order/message gateway."""
