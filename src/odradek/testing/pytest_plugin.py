"""The pytest plugin shipped with odradek (registered by entry point): fixtures that give
a test a real broker. Filled in by the test-fixture work; importing it must stay cheap."""
