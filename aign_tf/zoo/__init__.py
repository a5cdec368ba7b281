"""Task registry and the command-line entry points: train, evaluate, benchmark."""
