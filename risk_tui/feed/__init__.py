"""Talking to the broker over HTTP: FEED.md wire models, the poller, the broker client for
orders, messages and cancels, and the one retry policy they share."""
