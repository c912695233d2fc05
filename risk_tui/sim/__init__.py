"""The simulator: a FEED.md server on loopback with seeded, reproducible books."""
