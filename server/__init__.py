"""The cimhub hub: store, mutation engine, WebSocket endpoint."""
