"""The public HTTP API and what it uses to reach the validators."""
