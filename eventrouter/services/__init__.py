"""The router's own services, below every part that runs events: shared AWS clients and Kafka
producers (``clients``), concurrency slots (``concurrency``) and time left (``deadlines``)."""
