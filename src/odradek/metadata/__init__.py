"""The cluster image: brokers, topics, partitions and their leaders, and topic configs."""
