"""Reusable Keras blocks: initialisers, conv / deconv stacks, critics, the metric classifier."""
