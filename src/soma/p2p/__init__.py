"""The P2P network: one gRPC service (`soma.p2p.P2p`) on its own port, open to every
node (validators and fullnodes), and peer discovery over it.

Layout, downward: `errors`, `node_info` (what a node says about itself, signed),
`wire` (the service's BCS messages), `rate_limit`, `server` (a handler table other
components add their methods to), `client` (typed calls with deadlines), `parameters`,
`peer_table` (discovery as a sans-IO state machine), `discovery` (its asyncio driver),
`service` (all of it for one node). State sync adds its own methods to the same server.
"""
