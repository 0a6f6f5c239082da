"""One module per Kafka API: each computes a response from a request, with no socket or file
code. Importing this package imports no handler: registry.API_TABLE lists them, and each
module is imported on the first request for its API (`registry.load_all()` imports all)."""
