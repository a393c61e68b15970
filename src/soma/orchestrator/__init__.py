"""The client side of the validators, on behalf of a node's users (Sui calls this the
transaction orchestrator): executing a transaction through a quorum of validators,
batching the calls to each, and the chain as the HTTP API reads and writes it."""
