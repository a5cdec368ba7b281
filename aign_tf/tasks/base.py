"""What every task is: an object bound to its validated configuration.

A task module defines one `Task` subclass; `aign_tf.zoo.registry` maps its name to it. The class
declares its typed `Options` and the paper's hyperparameters (`run_defaults`); an instance loads
what it needs (data, pose basis, intrinsics, the judging classifier) once, on first use, and holds
it. Data flows `train_batches` -> `build_model` (generator -> renderer, critics) -> losses -> the
train loop (`aign_tf.zoo.trainer`) -> checkpoint (`aign_tf.zoo.rundir`) -> `serving` (export).
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from aign_tf.core import AIGN, Gating
from aign_tf.errors import UserError
from aign_tf.tasks.options import Config, Options


class Task:
    """A task bound to `config`. Subclasses set `name`, `Options`, `run_defaults` and implement
    the methods that raise NotImplementedError here."""

    name: ClassVar[str]
    Options: ClassVar[type[Options]] = Options
    run_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Config):
        if config.task != self.name or not isinstance(config.options, self.Options):
            raise UserError(f"a {config.task!r} config cannot configure task {self.name!r}")
        self.config = config
        self.options = config.options

    # -- configuration ---------------------------------------------------------------------------

    @classmethod
    def configure(cls, **overrides: Any) -> Config:
        """The paper's configuration of this task with `overrides` (hyperparameters or task options;
        None values ignored), validated."""
        return Config(task=cls.name, options=cls.Options(), **cls.run_defaults).replace(**overrides)

    @classmethod
    def config_from_dict(cls, stored: dict[str, Any], *, what: str = "config") -> Config:
        """A stored config (`Config.to_dict`); options it predates take today's defaults."""
        stored = dict(stored)
        if stored.pop("task", cls.name) != cls.name:
            raise UserError(f"{what} is not a {cls.name!r} config")
        options = cls.Options.from_dict(stored.pop("options", None) or {}, what=f"{what} of task {cls.name!r}")
        run = {**cls.run_defaults, **stored}
        unknown = sorted(set(run) - set(Config.RUN_FIELDS))
        if unknown:
            raise UserError(f"{what} has an unknown setting {unknown[0]!r}")
        return Config(task=cls.name, options=options, **run)

    # -- the model -------------------------------------------------------------------------------

    def build_model(self) -> AIGN:
        """The task's AIGN, untrained (call inside the strategy scope)."""
        raise NotImplementedError

    def aign_weights(self) -> dict[str, Any]:
        """The AIGN keyword arguments that come from the hyperparameters: eq. (1)'s weights, losses, gating."""
        c = self.config
        return dict(beta=c.beta, reconstruction=c.reconstruction, gan_loss=c.gan_loss, gating=Gating(enabled=c.gating),
                    supervised_weight=c.supervised_weight, reconstruction_weight=c.reconstruction_weight)

    def optimizers(self) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
        """Adam for generator and critics at the paper's learning rate (beta_1 = 0.5, as in DCGAN)."""
        rate = self.config.learning_rate
        return keras.optimizers.Adam(rate, beta_1=0.5), keras.optimizers.Adam(rate, beta_1=0.5)

    # -- data ------------------------------------------------------------------------------------

    def train_batches(self) -> tf.data.Dataset:
        """Repeated global batches of training examples (layout: `aign_tf.core.batches`); the train
        loop feeds each input pipeline its shard of them (`batches.shard` with its InputContext)."""
        raise NotImplementedError

    def eval_dataset(self) -> tf.data.Dataset:
        """One pass over the held-out inputs, in order, in batches."""
        raise NotImplementedError

    # -- measurement and use ---------------------------------------------------------------------

    def evaluate(self, model: AIGN) -> dict[str, float]:
        """The task's held-out metrics {name: value}."""
        raise NotImplementedError

    def images(self, model: AIGN, batch: dict) -> dict[str, tf.Tensor]:
        """{row name: [N, H, W, C] images in [0, 1]}: TensorBoard grids and evaluation.png."""
        raise NotImplementedError

    def serving(self, model: AIGN) -> dict:
        """{signature name: `aign_tf.export.signatures.Signature`}, `serving_default` first: what a
        client sends and gets back (`aign_tf.export` adds the generator itself as `generator`)."""
        raise NotImplementedError

    @classmethod
    def unlabelled_options(cls, path: str) -> dict[str, Any]:
        """The task options that make the user's files at `path` the unlabelled inputs to adapt to
        (`aign_tf.zoo.adapt`)."""
        raise UserError(f"task {cls.name} cannot adapt to your files yet; fine-tune it with train --init_from")
