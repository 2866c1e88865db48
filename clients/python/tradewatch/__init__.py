"""Client stubs of the tradewatch gRPC API; the API is in tradewatch.v1."""
