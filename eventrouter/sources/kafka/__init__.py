"""Apache Kafka: a stream (settings, the adapter on aiokafka, the record shape)."""

from eventrouter.sources.kafka.source import Kafka, KafkaAdapter, KafkaRecord

__all__ = ["Kafka", "KafkaAdapter", "KafkaRecord"]
