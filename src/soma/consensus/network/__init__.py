"""The consensus network: gRPC between the validators of one committee."""
