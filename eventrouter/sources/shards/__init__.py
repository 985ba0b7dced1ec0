"""Sharded streams (Kinesis Data Streams, DynamoDB Streams): the transport-level reader
that finds shards, keeps parents before children and polls each shard, and the durable
checkpoints (and leases, for several hosts) of every shard. Lambda's stream rules are
:mod:`eventrouter.runtime.policies.stream`'s."""
