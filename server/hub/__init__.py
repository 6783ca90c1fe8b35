"""Live connections: the hub (who watches what), feeds, the Redis pub/sub broker, per-connection session and sender."""
