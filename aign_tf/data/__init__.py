"""tf.data pipelines: readers for the paper's real data formats and the offline defaults."""
