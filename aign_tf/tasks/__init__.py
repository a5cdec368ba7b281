"""One module per task: generator, critics, renderer wiring, data, metrics."""
