"""Which checkpoint a resumed run restores, when a killed run left the state file behind or a
checkpoint cut short."""
import numpy as np
import tensorflow as tf

from aign_tf.zoo import rundir


def test_latest_checkpoint_counts_complete_checkpoints_the_state_file_does_not_name(tmp_path):
    directory = tmp_path / "checkpoints"
    value = tf.Variable(1.0)
    checkpoint = tf.train.Checkpoint(value=value)
    assert rundir.latest_checkpoint(str(tmp_path)) is None  # no directory yet
    tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3).save(checkpoint_number=2)
    assert rundir.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-2")
    # A kill after the data and index of ckpt-5 were written, before the state file named it:
    value.assign(5.0)
    checkpoint.write(str(directory / "ckpt-5"))
    assert tf.train.latest_checkpoint(str(directory)).endswith("ckpt-2")
    assert rundir.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-5")
    # An index whose data never arrived does not count.
    (directory / "ckpt-9.index").write_bytes(b"")
    assert rundir.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-5")
    value.assign(0.0)
    assert rundir.restore(tf.train.Checkpoint(value=value), str(tmp_path)) == str(directory / "ckpt-5")
    assert float(value.numpy()) == 5.0


def test_resume_skips_a_checkpoint_cut_short_by_a_kill(tmp_path):
    """Whatever part of the newest checkpoint a kill cut short, the one before is restored."""
    directory = tmp_path / "checkpoints"
    value = tf.Variable(tf.fill([1000], 2.0))
    checkpoint = tf.train.Checkpoint(value=value)
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3)
    manager.save(checkpoint_number=2)
    value.assign(tf.fill([1000], 4.0))
    manager.save(checkpoint_number=4)
    data = next(directory.glob("ckpt-4.data-*"))
    index = directory / "ckpt-4.index"
    complete = {path: path.read_bytes() for path in (data, index)}
    for path, keep in [(data, 100), (data, 0), (index, 10), (index, 0)]:
        for other, content in complete.items():
            other.write_bytes(content)
        path.write_bytes(complete[path][:keep])  # the write stopped after `keep` bytes
        assert rundir.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-2"), (path.name, keep)
        value.assign(tf.zeros([1000]))
        assert rundir.restore(tf.train.Checkpoint(value=value), str(tmp_path)) == str(directory / "ckpt-2")
        assert np.all(value.numpy() == 2.0)
    data.unlink()  # the data file never renamed into place
    index.write_bytes(complete[index])
    assert rundir.latest_checkpoint(str(tmp_path)) == str(directory / "ckpt-2")
