"""The default inpaint AIGN step written independently in PyTorch: the reference of the speed comparison
in the README's performance section. Not part of the package; needs `torch` (not an aign_tf dependency).

Same networks as `aign_tf.tasks.inpaint` at its defaults (28x28x1 MNIST, width 32): the generator's
image and mask branches (two 4x4 stride-2 convs each), concatenated, three transposed convs (sigmoid
out); the critic's four 4x4 convs and one linear score; TensorFlow's "same" padding (asymmetric where
TF's is), batch norm (eps 1e-3, batch statistics in training), leaky ReLU 0.2. Same losses: L2 over
visible pixels + beta * softplus(-D(G(x))) for the generator, the mean of softplus(-D(m)) and
softplus(D(G(x))) for the critic, one forward pass for both, the critic called twice (memories,
predictions). Adam (1e-4, beta_1 0.5, eps 1e-7) for each network, updated every step (`--nogating`).

Three commands:

    # in aign_tf's environment: weights, one batch and TensorFlow's gradients at those weights
    python zoo/pytorch_inpaint.py dump --npz=/tmp/inpaint-ref.npz
    # in an environment with torch: the same gradients from this file's networks, compared
    python zoo/pytorch_inpaint.py check --npz=/tmp/inpaint-ref.npz
    # examples/s of the step on in-memory batches (eager, or --compile for torch.compile)
    python zoo/pytorch_inpaint.py time [--compile] [--steps=30] [--warmup=5] [--batch_size=32]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

BETA = 0.02  # the inpaint task's default
SIZE, WIDTH = 28, 32


def dump(path: str) -> None:
    """Writes the initial weights of aign_tf's default inpaint model (layer order of its Keras models),
    one training batch, the loss terms and the gradients of both objectives."""
    import tensorflow as tf

    from aign_tf.core import losses
    from aign_tf.zoo import registry, trainer

    task = registry.get_task("inpaint", gating=False)
    model, _ = trainer.build(task)
    batch = next(iter(task.train_batches()))
    with tf.GradientTape(persistent=True) as tape:
        terms = model.compute_losses(batch, training=True)
        g_total = tf.reduce_mean(terms["reconstruction"]) + model.beta * tf.reduce_mean(terms["g_adversarial"])
        d_loss = tf.reduce_mean(terms["d_loss"])
    assert model.beta == BETA and model.reconstruction == "l2" and losses.RECONSTRUCTION_ERRORS["l2"] is tf.square
    arrays = {"image": batch["inputs"]["image"], "mask": batch["inputs"]["mask"], "observed": batch["observed"],
              "memories": batch["memories"]["image"], "g_total": g_total, "d_loss": d_loss}
    for prefix, network, objective in (("g", model.generator, g_total), ("d", model.critics["image"], d_loss)):
        weighted = [layer for layer in network.layers if layer.trainable_weights]
        for i, layer in enumerate(weighted):
            for weight in layer.weights:
                arrays[f"{prefix}/{i:02d}/{type(layer).__name__}/{weight.path.split('/')[-1]}"] = weight
        grads = tape.gradient(objective, network.trainable_variables)
        for i, (weight, grad) in enumerate(zip(network.trainable_variables, grads)):
            arrays[f"grad/{prefix}/{i:02d}/{weight.path}"] = grad
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {path}: {len(arrays)} arrays")


def networks():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class SamePadConv(nn.Module):
        """TensorFlow's 'same' 4x4 conv: pad (total k - s or k - 1 for odd sizes) with the extra row and
        column at the end, then a valid conv."""

        def __init__(self, cin, cout, stride, bias, size):
            super().__init__()
            out = -(-size // stride)
            total = max((out - 1) * stride + 4 - size, 0)
            self.pad = (total // 2, total - total // 2) * 2  # (left, right, top, bottom)
            self.conv = nn.Conv2d(cin, cout, 4, stride, bias=bias)

        def forward(self, x):
            return self.conv(F.pad(x, self.pad))

    class Generator(nn.Module):
        def __init__(self, w=WIDTH):
            super().__init__()
            self.a1, self.b1 = SamePadConv(1, w, 2, True, SIZE), SamePadConv(1, w // 2, 2, True, SIZE)
            self.a2, self.b2 = SamePadConv(w, 2 * w, 2, False, SIZE // 2), SamePadConv(w // 2, w, 2, False, SIZE // 2)
            self.bn_a2, self.bn_b2 = nn.BatchNorm2d(2 * w, eps=1e-3, momentum=0.01), nn.BatchNorm2d(w, eps=1e-3, momentum=0.01)
            self.t1 = nn.ConvTranspose2d(3 * w, 2 * w, 4, 2, padding=1, bias=False)
            self.bn_t1 = nn.BatchNorm2d(2 * w, eps=1e-3, momentum=0.01)
            self.t2 = nn.ConvTranspose2d(2 * w, w, 4, 2, padding=1, bias=False)
            self.bn_t2 = nn.BatchNorm2d(w, eps=1e-3, momentum=0.01)
            self.t3 = nn.ConvTranspose2d(w, 1, 4, 1, padding=0, bias=True)  # 'same' at stride 1: crop 1 before, 2 after

        def keras_order(self):
            return [self.a1.conv, self.b1.conv, self.a2.conv, self.b2.conv, self.bn_a2, self.bn_b2, self.t1, self.bn_t1,
                    self.t2, self.bn_t2, self.t3]

        def forward(self, image, mask):
            a = F.leaky_relu(self.a1(image), 0.2)
            a = F.leaky_relu(self.bn_a2(self.a2(a)), 0.2)
            b = F.leaky_relu(self.b1(mask), 0.2)
            b = F.leaky_relu(self.bn_b2(self.b2(b)), 0.2)
            x = torch.cat([a, b], dim=1)
            x = F.relu(self.bn_t1(self.t1(x)))
            x = F.relu(self.bn_t2(self.t2(x)))
            return torch.sigmoid(self.t3(x)[:, :, 1:SIZE + 1, 1:SIZE + 1])

    class Critic(nn.Module):
        def __init__(self, w=WIDTH):
            super().__init__()
            self.c1 = SamePadConv(1, w, 2, True, SIZE)
            self.c2 = SamePadConv(w, 2 * w, 2, False, SIZE // 2)
            self.c3 = SamePadConv(2 * w, 4 * w, 2, False, SIZE // 4)
            self.c4 = SamePadConv(4 * w, 8 * w, 1, False, 4)  # 7 -> 4 at stride 2 above, then stride 1
            self.bn2, self.bn3, self.bn4 = (nn.BatchNorm2d(c, eps=1e-3, momentum=0.01) for c in (2 * w, 4 * w, 8 * w))
            self.score = nn.Linear(8 * w * 16, 1)

        def keras_order(self):
            return [self.c1.conv, self.c2.conv, self.bn2, self.c3.conv, self.bn3, self.c4.conv, self.bn4, self.score]

        def forward(self, image):
            x = F.leaky_relu(self.c1(image), 0.2)
            x = F.leaky_relu(self.bn2(self.c2(x)), 0.2)
            x = F.leaky_relu(self.bn3(self.c3(x)), 0.2)
            x = F.leaky_relu(self.bn4(self.c4(x)), 0.2)
            return self.score(x.flatten(1))

    return Generator(), Critic()


def losses(generator, critic, image, mask, observed, memories):
    """(generator objective, critic objective), batch means as in aign_tf's eq. (1)."""
    import torch.nn.functional as F

    prediction = generator(image, mask)
    error = ((prediction * mask - observed) ** 2 * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)
    real, fake = critic(memories), critic(prediction)
    g_total = error.mean() + BETA * F.softplus(-fake).mean()
    d_loss = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
    return g_total, d_loss


def load_keras_weights(module, arrays: dict, prefix: str) -> None:
    """Copies the dumped Keras weights (NHWC kernels) into the module's layers, in Keras layer order."""
    import torch

    names = sorted({k.rsplit("/", 1)[0] for k in arrays if k.startswith(prefix + "/")})
    layers = module.keras_order()
    assert len(names) == len(layers), (names, layers)
    for name, layer in zip(names, layers):
        get = lambda w: torch.from_numpy(np.ascontiguousarray(arrays[f"{name}/{w}"]))  # noqa: E731
        kind = name.split("/")[-1]
        with torch.no_grad():
            if kind.endswith("BatchNorm") or kind == "BatchNormalization":
                layer.weight.copy_(get("gamma")), layer.bias.copy_(get("beta"))
                layer.running_mean.copy_(get("moving_mean")), layer.running_var.copy_(get("moving_variance"))
            elif kind == "Dense":  # Keras flattens HWC, torch CHW
                kernel = arrays[f"{name}/kernel"]
                channels = kernel.shape[0] // 16
                chw = kernel.reshape(4, 4, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(chw.T))), layer.bias.copy_(get("bias"))
            else:  # Conv2D (h, w, in, out) -> (out, in, h, w); Conv2DTranspose (h, w, out, in) -> (in, out, h, w)
                kernel = arrays[f"{name}/kernel"]
                assert layer.weight.shape == kernel.transpose(3, 2, 0, 1).shape, (name, layer.weight.shape)
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
                if layer.bias is not None:
                    layer.bias.copy_(get("bias"))


def check(path: str) -> None:
    """Gradients of this file's step against TensorFlow's at the same weights and batch."""
    import torch

    arrays = dict(np.load(path))
    generator, critic = networks()
    load_keras_weights(generator, arrays, "g")
    load_keras_weights(critic, arrays, "d")
    nchw = {k: torch.from_numpy(arrays[k].transpose(0, 3, 1, 2).copy()) for k in ("image", "mask", "observed", "memories")}
    g_total, d_loss = losses(generator, critic, **nchw)
    print(f"g_total {g_total.item():.7g} (TensorFlow {float(arrays['g_total']):.7g}), "
          f"d_loss {d_loss.item():.7g} (TensorFlow {float(arrays['d_loss']):.7g})")
    worst = 0.0
    for prefix, module, objective in (("g", generator, g_total), ("d", critic, d_loss)):
        params = [p for layer in module.keras_order() for p in (layer.weight, layer.bias) if p is not None]
        grads = dict(zip(params, torch.autograd.grad(objective, params, retain_graph=True)))
        keras_grads = [arrays[k] for k in sorted(arrays) if k.startswith(f"grad/{prefix}/")]
        assert len(keras_grads) == len(params)
        for keras_grad, param in zip(keras_grads, params):
            ours = grads[param].numpy()
            if ours.ndim == 4:  # back to the Keras layout
                ours = ours.transpose(2, 3, 1, 0)
            elif ours.ndim == 2:
                ours = ours.T.reshape(-1, 4, 4, 1).transpose(1, 2, 0, 3).reshape(keras_grad.shape)
            relative = np.abs(ours - keras_grad).max() / (np.abs(keras_grad).max() + 1e-30)
            worst = max(worst, relative)
    count = sum(p.numel() for m in (generator, critic) for p in m.parameters())
    print(f"parameters {count}; largest gradient difference over the weights, relative to the weight's largest "
          f"gradient: {worst:.2g}")


def time_steps(compile_: bool, steps: int, warmup: int, batch_size: int) -> None:
    import torch

    torch.manual_seed(0)
    generator, critic = networks()
    g_opt = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.5, 0.999), eps=1e-7)
    d_opt = torch.optim.Adam(critic.parameters(), 1e-4, betas=(0.5, 0.999), eps=1e-7)
    g_params, d_params = list(generator.parameters()), list(critic.parameters())
    forward = torch.compile(losses) if compile_ else losses

    def step(batch):
        g_total, d_loss = forward(generator, critic, *batch)
        g_grads = torch.autograd.grad(g_total, g_params, retain_graph=True)
        d_grads = torch.autograd.grad(d_loss, d_params)
        for p, g in zip(g_params + d_params, g_grads + d_grads):
            p.grad = g
        g_opt.step(), d_opt.step()

    mask = torch.ones(batch_size, 1, SIZE, SIZE)
    mask[:, :, SIZE // 4:3 * SIZE // 4, SIZE // 4:3 * SIZE // 4] = 0
    held = []
    for _ in range(4):  # in-memory batches, as `benchmark`'s step_examples_per_s
        image = torch.rand(batch_size, 1, SIZE, SIZE)
        held.append((image * mask, mask, image * mask, torch.rand(batch_size, 1, SIZE, SIZE)))
    for i in range(warmup):
        step(held[i % 4])
    start = time.perf_counter()
    for i in range(steps):
        step(held[i % 4])
    seconds = time.perf_counter() - start
    print(f"torch {torch.__version__} {'compile' if compile_ else 'eager'}, {torch.get_num_threads()} threads: "
          f"{steps * batch_size / seconds:.1f} examples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("dump", "check", "time"))
    parser.add_argument("--npz", default="/tmp/inpaint-ref.npz")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.npz)
    elif args.command == "check":
        check(args.npz)
    else:
        time_steps(args.compile, args.steps, args.warmup, args.batch_size)


if __name__ == "__main__":
    main()
