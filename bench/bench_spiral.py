"""The spiral case study, 10,000 full-batch epochs: the lesson's NumPy loop against ``nnlab train spiral_mlp``.

    python bench/bench_spiral.py [--repeat 3] [--backends tensorflow,jax] [--set KEY=VALUE ...]

Each figure is a fresh process end to end (interpreter start, imports, data, training,
and for nnlab the evaluation, baselines, plots, model and run folder), measured side
by side in this one invocation, medians of ``--repeat`` runs, interleaved:

- the lesson: the case study's two-layer network exactly as its listing writes it
  (NumPy, float64, 100 ReLU units, step size 1.0, regularization 1e-3, 10,000
  iterations over the whole set), on the lesson's spiral (100 points of 3 classes);
- nnlab: ``nnlab train configs/spiral_mlp.yaml`` on each backend, with its
  training seconds (metrics.json ``fit_time_s``, the fit alone; ``wall_time_s`` adds
  recording the results: evaluation, baselines, plots, the model) and its training
  accuracy and loss;
- the floor (bench/floor.py): the 10,000 epochs' arithmetic at this machine's
  measured matmul rate.

Targets (issue 16): nnlab / lesson at most 2.5 on TensorFlow and 1.0 on JAX, end to
end; under 1 s of training for the 10,000 epochs on both; training accuracy 0.98.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import NNLAB, REPO, machine_line, run_child, version
import floor

CONFIG = REPO / "configs" / "spiral_mlp.yaml"
EPOCHS = 10_000

LESSON = r'''
import json
import numpy as np

np.random.seed(0)
N = 100 # number of points per class
D = 2 # dimensionality
K = 3 # number of classes
X = np.zeros((N*K,D)) # data matrix (each row = single example)
y = np.zeros(N*K, dtype='uint8') # class labels
for j in range(K):
  ix = range(N*j,N*(j+1))
  r = np.linspace(0.0,1,N) # radius
  t = np.linspace(j*4,(j+1)*4,N) + np.random.randn(N)*0.2 # theta
  X[ix] = np.c_[r*np.sin(t), r*np.cos(t)]
  y[ix] = j

# initialize parameters randomly
h = 100 # size of hidden layer
W = 0.01 * np.random.randn(D,h)
b = np.zeros((1,h))
W2 = 0.01 * np.random.randn(h,K)
b2 = np.zeros((1,K))

# some hyperparameters
step_size = 1e-0
reg = 1e-3 # regularization strength

# gradient descent loop
num_examples = X.shape[0]
for i in range(10000):
  # evaluate class scores, [N x K]
  hidden_layer = np.maximum(0, np.dot(X, W) + b) # note, ReLU activation
  scores = np.dot(hidden_layer, W2) + b2

  # compute the class probabilities
  exp_scores = np.exp(scores)
  probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True) # [N x K]

  # compute the loss: average cross-entropy loss and regularization
  correct_logprobs = -np.log(probs[range(num_examples),y])
  data_loss = np.sum(correct_logprobs)/num_examples
  reg_loss = 0.5*reg*np.sum(W*W) + 0.5*reg*np.sum(W2*W2)
  loss = data_loss + reg_loss

  # compute the gradient on scores
  dscores = probs
  dscores[range(num_examples),y] -= 1
  dscores /= num_examples

  # backpropate the gradient to the parameters
  dW2 = np.dot(hidden_layer.T, dscores)
  db2 = np.sum(dscores, axis=0, keepdims=True)
  dhidden = np.dot(dscores, W2.T)
  dhidden[hidden_layer <= 0] = 0
  dW = np.dot(X.T, dhidden)
  db = np.sum(dhidden, axis=0, keepdims=True)
  dW2 += reg * W2
  dW += reg * W
  W += -step_size * dW
  b += -step_size * db
  W2 += -step_size * dW2
  b2 += -step_size * db2

# evaluate training set accuracy
hidden_layer = np.maximum(0, np.dot(X, W) + b)
scores = np.dot(hidden_layer, W2) + b2
predicted_class = np.argmax(scores, axis=1)
print(json.dumps({"loss": float(loss), "accuracy": float(np.mean(predicted_class == y))}))
'''


def lesson(folder: Path) -> tuple[float, dict]:
    script = folder / "lesson_spiral.py"
    script.write_text(LESSON)
    child = run_child([sys.executable, str(script)]).check("the lesson's loop")
    return child.seconds, json.loads(child.stdout.strip().splitlines()[-1])


def nnlab(backend: str, runs: Path, overrides: list[str]) -> tuple[float, dict]:
    sets = [arg for key in overrides for arg in ("--set", key)]
    child = run_child([*NNLAB, "train", str(CONFIG), "--backend", backend, "--runs-dir", str(runs), "--quiet",
                       *sets], env={"TF_CPP_MIN_LOG_LEVEL": "3"}).check(f"nnlab train on {backend}")
    folder = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    metrics = json.loads((folder / "metrics.json").read_text())
    return child.seconds, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median counts")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for nnlab's runs (e.g. training.input_pipeline=tf_data)")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    print(machine_line() + (f", jax {version('jax')}" if "jax" in backends else ""))
    results: dict[str, list[tuple[float, dict]]] = {"lesson": [], **{b: [] for b in backends}}
    with tempfile.TemporaryDirectory(prefix="nnlab-bench-spiral-") as scratch:
        folder = Path(scratch)
        for _ in range(args.repeat):
            results["lesson"].append(lesson(folder))
            for backend in backends:
                results[backend].append(nnlab(backend, folder / f"runs_{backend}", args.overrides))
    lesson_s = statistics.median(s for s, _ in results["lesson"])
    lesson_out = results["lesson"][0][1]
    print(f"lesson (NumPy, 10,000 iterations): {lesson_s:.2f} s end to end; "
          f"loss {lesson_out['loss']:.4f}, training accuracy {lesson_out['accuracy']:.4f}")
    for backend in backends:
        seconds = statistics.median(s for s, _ in results[backend])
        trained = statistics.median(m["wall_time_s"] for _, m in results[backend])
        fitted = statistics.median(m["fit_time_s"] for _, m in results[backend])
        metrics = results[backend][0][1]
        bound = floor.measure(str(CONFIG), (2,), metrics["train_rows"], 0, backend)
        target = 2.5 if backend == "tensorflow" else 1.0
        print(f"nnlab on {backend} ({metrics['input_pipeline']}, {metrics.get('epochs_per_call')} epochs per call): "
              f"{seconds:.2f} s end to end = {seconds / lesson_s:.2f}x the lesson (target <= {target}); "
              f"the fit (fit_time_s) {fitted:.2f} s (target < 1 s), with recording the results (wall_time_s) "
              f"{trained:.2f} s; "
              f"loss {metrics['train']['loss']:.4f}, training accuracy {metrics['train']['accuracy']:.4f}")
        print(f"  {floor.describe(bound, EPOCHS)}; fit / floor = {fitted / (bound['floor_s'] * EPOCHS):,.0f}")


if __name__ == "__main__":
    main()
