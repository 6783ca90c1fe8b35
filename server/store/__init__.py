"""CIM documents in Redis: keys, the store and its commit script, the mutation engine, queries."""
