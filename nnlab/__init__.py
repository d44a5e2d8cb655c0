"""nnlab: a command-line experiment runner for neural networks in Keras, and its Python API.

    import nnlab
    run = nnlab.train("spiral_mlp")      # the run folder nnlab train writes, as a Run
    nnlab.runs()                         # every run, as nnlab compare lists them (a DataFrame)

The API's names (:data:`__all__`) are those of :mod:`nnlab.api`, imported on their first use.
Importing nnlab is cheap: TensorFlow and Keras are imported only inside the code paths that build
or train a model, pandas only when a table is asked for.
"""

__version__ = "0.1.0"

#: The Python API (:mod:`nnlab.api`): one function per command, and what they return.
__all__ = ["train", "kfold", "sweep", "runs", "run", "report", "predict", "Run", "RunGroup", "Report",
           "Predictions"]


def __getattr__(name: str):
    # The API is imported on first use, so that `import nnlab` (and `nnlab --help`) stay light.
    if name in __all__:
        from nnlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'nnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
