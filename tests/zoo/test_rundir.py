"""config.json: every hyperparameter and option of every task survives a round trip, and a file
written before an option existed loads with that option's default."""
import json

import pytest

from aign_tf.errors import UserError
from aign_tf.tasks.options import Config
from aign_tf.zoo import registry, rundir
from tests.testing import non_default_settings


@pytest.mark.parametrize("name", registry.TASKS)
def test_every_option_survives_config_json_round_trips(tmp_path, name):
    task_class = registry.task_class(name)
    options = {f.name for f in task_class.Options.option_fields()}
    for config in (task_class.configure(), task_class.configure(**non_default_settings(task_class))):
        rundir.write_config(str(tmp_path), config)
        stored = json.loads((tmp_path / "config.json").read_text())
        assert stored == config.to_dict()
        assert set(stored) == {"task", "options", *Config.RUN_FIELDS} and set(stored["options"]) == options
        assert rundir.read_config(str(tmp_path)) == config
        assert rundir.trained_config(task_class, str(tmp_path)) == config
        assert task_class(rundir.read_config(str(tmp_path))).options == config.options
        rundir.write_config(str(tmp_path), rundir.read_config(str(tmp_path)))  # and once more
        assert json.loads((tmp_path / "config.json").read_text()) == stored


@pytest.mark.parametrize("name", registry.TASKS)
def test_an_old_config_json_lacking_newer_options_loads_with_their_defaults(tmp_path, name):
    task_class = registry.task_class(name)
    settings = non_default_settings(task_class)
    stored = task_class.configure(**settings).to_dict()
    checked = 0
    for missing in settings:  # each setting in turn is one the file predates; the others are set
        old = json.loads(json.dumps(stored))
        del (old["options"] if missing in old["options"] else old)[missing]
        (tmp_path / "config.json").write_text(json.dumps(old))
        try:
            want = task_class.configure(**{k: v for k, v in settings.items() if k != missing})
        except UserError:  # the default does not go with the other settings (e.g. a dataset without its
            with pytest.raises(UserError):  # directory): the old file is refused the same way
                rundir.read_config(str(tmp_path))
            continue
        got = rundir.read_config(str(tmp_path))
        assert got == want, missing
        default = task_class.configure()
        assert getattr(got.options if missing in stored["options"] else got, missing) == getattr(
            default.options if missing in stored["options"] else default, missing), missing
        checked += 1
    assert checked >= len(settings) - 1
    # A file from before every task option: the task's defaults, the stored hyperparameters.
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in stored.items() if k != "options"}))
    got = rundir.read_config(str(tmp_path))
    assert got.options == task_class.configure().options
    assert {k: getattr(got, k) for k in Config.RUN_FIELDS} == {k: stored[k] for k in Config.RUN_FIELDS}


def test_a_config_json_with_an_option_the_task_lacks_is_refused(tmp_path):
    stored = registry.get_task("inpaint").config.to_dict()
    stored["options"]["frame_size"] = "32x96"
    (tmp_path / "config.json").write_text(json.dumps(stored))
    with pytest.raises(UserError, match="no option 'frame_size'"):
        rundir.read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="is not a valid aign_tf config"):
        rundir.read_config(str(tmp_path))
    assert rundir.read_config(str(tmp_path / "absent")) is None
