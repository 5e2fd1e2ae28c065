"""Digit Canvas: draw a digit, and a Dense MNIST network says which one it is.

`app.serving` answers requests (it never imports `app.training` or TensorFlow);
`app.training` trains and evaluates the model that serving loads from `models/`.
"""

import os

# NumPy's OpenBLAS would start a thread per core for every matrix product and keep them
# spinning afterwards; this network's products (one 784-vector at a time) are far too small
# to gain from that, and a server's other core has better things to do.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
