"""Coordinators: the group coordinator (classic consumer group protocol and committed
offsets), whose state lives in the internal topic `__consumer_offsets`."""
