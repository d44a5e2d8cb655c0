"""nnlab: a command-line experiment runner for neural networks in Keras.

Importing nnlab is cheap: TensorFlow and Keras are imported only inside the
code paths that build or train a model.
"""

__version__ = "0.1.0"
