"""A small ride-hailing system on Kafka topics, to run against an odradek broker.

    trip services (producers)          topic `trip-events` (6 partitions, key = city)
      trips-eu: oslo, berlin, lisbon ─┐
      trips-us: nyc, austin, denver  ─┴─►  requested / completed / cancelled events
                                              │                     │
             consumer group `city-stats` ◄────┘                     │
             (2 consumers, a 3rd joins later:                       │
              rebalancing) → per-city statistics                    │
              → topic `city-stats` (compacted, key = city)          │
                                                                    │
             consumer group `anomaly-alerts` ◄──────────────────────┘
             (reads every event again, independently)
              → topic `ride-alerts`

Run it with `python -m examples.rides --bootstrap 127.0.0.1:9092 --seconds 10` from the
repository root, against `make run`. Modules: `events` (the event model and the trip
simulator), `services` (the producers), `stats` and `alerts` (the two consumer groups),
`run` (creates the topics, starts everything, prints the report).
"""
