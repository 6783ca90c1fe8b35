"""Clients of the hub: the async Python client, the HTTP client and the CLI."""
