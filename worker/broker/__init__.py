"""The Redis broker as babelwire uses it: kombu's Redis transport with an atomic claim,
bounded decoding, a dead-letter list and message leases.

- `envelope.py`     what a queue item must be (decoded with bounded nesting) and why not
- `claim.py`        the Lua script that pops and records a message as unacked atomically
- `dead_letter.py`  the capped list refused items are moved to
- `transport.py`    the guarded kombu channel, QoS and transport
- `server.py`       Redis version and TLS checks
- `exceptions.py`   the package's errors
"""
