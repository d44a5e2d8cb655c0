"""The machine's floor for one epoch: its arithmetic divided by the machine's measured throughput.

    python bench/floor.py --config configs/fashion_mnist_cnn.yaml --input-shape 28,28 \
        --train-rows 54000 --validation-rows 6000 [--backend tensorflow|jax]

prints one JSON object: the model's multiply-add arithmetic per row, the epoch's
GFLOP, the backend's measured float32 throughput (a matmul and a convolution,
timed here, now) and the floor in seconds. The benchmarks run it as a child in the
same invocation as the rows it qualifies, so floor and measurement share the
machine's state.

Arithmetic, counted from the layer shapes of the model nnlab builds from the config:
a Dense layer 2 x inputs x units per row, a convolution 2 x kernel area x input
channels x filters x output positions; pooling, activations, normalization and the
loss are left out (elementwise, far smaller). Training a row costs its forward pass
and a backward pass of about twice that (the gradients of the activations and of
the weights), so 3 x forward; a validation row costs 1 x forward. The floor takes
Dense arithmetic at the matmul's rate and convolutions at the convolution's: what
this machine's kernels do at their best on large operands, so no epoch can be faster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Operand sizes of the throughput probes: large enough that the kernels run at their best.
MATMUL_SIZE = 2048
CONV_BATCH, CONV_SIDE, CONV_CHANNELS = 64, 56, 64


def forward_flops(model) -> dict[str, float]:
    """Forward-pass FLOPs per row, ``{"dense": ..., "conv": ...}``, from the built model's layer shapes."""
    dense = conv = 0.0
    for layer in model.layers:
        name = type(layer).__name__
        if name == "Dense":
            inputs = int(layer.kernel.shape[0])
            positions = 1
            for size in layer.input.shape[1:-1]:  # Dense on a sequence applies to every position
                positions *= int(size)
            dense += 2.0 * inputs * int(layer.units) * positions
        elif name in ("Conv1D", "Conv2D", "Conv3D"):
            kernel = layer.kernel.shape  # (*window, in_channels, filters)
            window = 1
            for size in kernel[:-2]:
                window *= int(size)
            positions = 1
            for size in layer.output.shape[1:-1]:
                positions *= int(size)
            conv += 2.0 * window * int(kernel[-2]) * int(kernel[-1]) * positions
    return {"dense": dense, "conv": conv}


def _best_seconds(run, repeats: int = 5) -> float:
    run()  # warm-up: tracing, allocation
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def throughput(backend: str) -> dict[str, float]:
    """Measured float32 GFLOP/s of a large matmul and a 3x3 convolution on ``backend``."""
    import numpy as np

    import keras

    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.normal(size=(MATMUL_SIZE, MATMUL_SIZE)).astype("float32"))
    images = keras.ops.convert_to_tensor(
        rng.normal(size=(CONV_BATCH, CONV_SIDE, CONV_SIDE, CONV_CHANNELS)).astype("float32"))
    kernel = keras.ops.convert_to_tensor(rng.normal(size=(3, 3, CONV_CHANNELS, CONV_CHANNELS)).astype("float32"))
    if backend == "jax":
        import jax

        # Operands as arguments: XLA would fold a computation of constants at compile time.
        matmul_of = jax.jit(lambda m: keras.ops.matmul(m, m))
        convolve_of = jax.jit(lambda i, k: keras.ops.conv(i, k, padding="same"))

        def block(result):
            return result.block_until_ready()
    else:
        import tensorflow as tf

        matmul_of = tf.function(lambda m: keras.ops.matmul(m, m))
        convolve_of = tf.function(lambda i, k: keras.ops.conv(i, k, padding="same"))

        def block(result):
            return result.numpy()

    matmul_seconds = _best_seconds(lambda: block(matmul_of(a)))
    conv_seconds = _best_seconds(lambda: block(convolve_of(images, kernel)))
    conv_flops = 2.0 * 9 * CONV_CHANNELS * CONV_CHANNELS * CONV_SIDE * CONV_SIDE * CONV_BATCH
    return {"matmul_gflops": 2.0 * MATMUL_SIZE ** 3 / matmul_seconds / 1e9, "conv_gflops": conv_flops / conv_seconds / 1e9}


def epoch_floor(config_path: Path, input_shape: tuple[int, ...], train_rows: int, validation_rows: int,
                backend: str) -> dict[str, float]:
    """The floor of one epoch of ``config_path``'s model: arithmetic, throughput and seconds."""
    from nnlab.config import load_config
    from nnlab.model import build_model

    config = load_config(config_path)
    model = build_model(config, input_shape, compile=False)
    per_row = forward_flops(model)
    rates = throughput(backend)
    rows_factor = 3 * train_rows + validation_rows  # forward+backward per training row, forward per validation row
    seconds = (per_row["dense"] * rows_factor / (rates["matmul_gflops"] * 1e9)
               + per_row["conv"] * rows_factor / (rates["conv_gflops"] * 1e9))
    return {"forward_mflop_per_row": (per_row["dense"] + per_row["conv"]) / 1e6,
            "epoch_gflop": (per_row["dense"] + per_row["conv"]) * rows_factor / 1e9,
            **rates, "floor_s": seconds, "params": int(model.count_params())}


def measure(config: str, input_shape: tuple[int, ...], train_rows: int, validation_rows: int,
            backend: str = "tensorflow") -> dict[str, float]:
    """:func:`epoch_floor` in a fresh child process (the benchmark's parent imports no backend)."""
    from common import run_child

    child = run_child([sys.executable, __file__, "--config", str(Path(config).resolve()), "--input-shape",
                       ",".join(map(str, input_shape)), "--train-rows", str(train_rows),
                       "--validation-rows", str(validation_rows), "--backend", backend],
                      env={"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}).check("the floor probe")
    return json.loads(child.stdout.strip().splitlines()[-1])


def describe(floor: dict[str, float], epochs: int = 1) -> str:
    """One line: the arithmetic, the throughputs and the floor of ``epochs`` epochs."""
    return (f"floor: {floor['epoch_gflop'] * epochs:,.2f} GFLOP / {floor['matmul_gflops']:,.0f} GFLOP/s matmul, "
            f"{floor['conv_gflops']:,.0f} GFLOP/s conv = {floor['floor_s'] * epochs:.4f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--input-shape", required=True, help="one example's shape, e.g. 28,28")
    parser.add_argument("--train-rows", type=int, required=True)
    parser.add_argument("--validation-rows", type=int, default=0)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    shape = tuple(int(n) for n in args.input_shape.split(","))
    print(json.dumps(epoch_floor(Path(args.config), shape, args.train_rows, args.validation_rows, args.backend)))


if __name__ == "__main__":
    main()
