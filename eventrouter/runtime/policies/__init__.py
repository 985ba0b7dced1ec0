"""Lambda's rules of each invocation model, applied to a transport through its adapter:
``asynchronous`` (the durable queue: retries, event age, destinations), ``queue_poll``
(polled queues), ``stream`` / ``stream_batch`` / ``stream_window`` (partitions and shards)."""
