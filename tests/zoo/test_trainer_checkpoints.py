"""Which checkpoint a resumed run restores, when a killed run left the state file behind."""
import tensorflow as tf

from aign_tf.zoo import trainer


def test_latest_checkpoint_counts_complete_checkpoints_the_state_file_does_not_name(tmp_path):
    directory = tmp_path / "checkpoints"
    value = tf.Variable(1.0)
    checkpoint = tf.train.Checkpoint(value=value)
    assert trainer.latest_checkpoint(str(tmp_path)) is None  # no directory yet
    tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3).save(checkpoint_number=2)
    assert trainer.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-2")
    # A kill after the data and index of ckpt-5 were written, before the state file named it:
    value.assign(5.0)
    checkpoint.write(str(directory / "ckpt-5"))
    assert tf.train.latest_checkpoint(str(directory)).endswith("ckpt-2")
    assert trainer.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-5")
    # An index whose data never arrived does not count.
    (directory / "ckpt-9.index").write_bytes(b"")
    assert trainer.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-5")
    value.assign(0.0)
    assert trainer.restore(tf.train.Checkpoint(value=value), str(tmp_path)) == str(directory / "ckpt-5")
    assert float(value.numpy()) == 5.0
