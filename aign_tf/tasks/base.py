"""What every task provides, and the run configuration shared by all of them.

A task module defines `TASK = Task(...)`; `aign_tf.zoo.registry` maps its name to the module.
Data flows data -> task model (generator -> renderer, critics) -> losses -> train loop.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import keras
import tensorflow as tf

from aign_tf.core import AIGN
from aign_tf.errors import UserError


@dataclasses.dataclass
class Config:
    """One training run. `options` holds the task's own settings (dataset, bias, mask, ...)."""
    task: str
    steps: int
    batch_size: int
    seed: int = 0
    beta: float = 1.0
    learning_rate: float = 1e-4
    gan_loss: str = "logistic"
    reconstruction: str = "l2"
    gating: bool = True
    supervised_weight: float = 0.0
    reconstruction_weight: float = 1.0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls(**json.loads(text))


@dataclasses.dataclass(frozen=True)
class Task:
    """A task: its paper defaults and the functions the train / evaluate CLIs call.

    defaults       Config fields (and `options`) from the paper for this task
    build_model    config -> compiled-ready AIGN (call inside the strategy scope)
    train_data     config -> repeated dataset of global batches (see `aign_tf.core.model`)
    eval_data      config -> finite dataset of batches over the held-out inputs
    evaluate       (model, config) -> {metric: float}
    images         (model, batch) -> {name: [N, H, W, C] images in [0, 1]}: TensorBoard grids, evaluation.png
    predict        optional (model, config) -> {name: array} on unlabelled inputs (`aign_tf.zoo.adapt`)
    serving        model -> {name: `aign_tf.export.signatures.Signature`}, `serving_default` first: what a client sends
                   and gets back (`aign_tf.export`, which adds the generator itself as `generator`)
    """
    name: str
    defaults: dict[str, Any]
    build_model: Callable[[Config], AIGN]
    train_data: Callable[[Config], tf.data.Dataset]
    eval_data: Callable[[Config], tf.data.Dataset]
    evaluate: Callable[[AIGN, Config], dict[str, float]]
    images: Callable[[AIGN, dict], dict[str, tf.Tensor]]
    predict: Callable[[AIGN, Config], dict] | None = None
    serving: Callable[[AIGN], dict[str, Any]] | None = None

    def config(self, **overrides: Any) -> Config:
        """The paper's defaults for this task, with `overrides` (None values ignored) applied."""
        fields = {k: v for k, v in self.defaults.items() if k != "options"}
        options = dict(self.defaults.get("options", {}))
        for key, value in overrides.items():
            if value is None:
                continue
            if key in options:
                options[key] = value
            elif key in {f.name for f in dataclasses.fields(Config)}:
                fields[key] = value
            else:
                raise UserError(f"task {self.name!r} has no option {key!r}; its options are {', '.join(sorted(options))}")
        return Config(task=self.name, options=options, **fields)


def with_default_options(task: "Task", config: Config) -> Config:
    """A stored config with the task's current defaults for options it predates."""
    return dataclasses.replace(config, options={**task.defaults.get("options", {}), **config.options})


def optimizers(config: Config) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    """Adam for generator and critics at the paper's learning rate (beta_1 = 0.5, as in DCGAN)."""
    return (keras.optimizers.Adam(config.learning_rate, beta_1=0.5),
            keras.optimizers.Adam(config.learning_rate, beta_1=0.5))
