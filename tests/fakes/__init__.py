"""Fake upstream servers that speak each provider's real wire protocol on 127.0.0.1."""
