"""What answers requests: settings, routes, schemas, preprocessing, inference, the page.

Nothing here imports `app.training`, TensorFlow or Keras: the server runs on NumPy, OpenCV
and Pillow, and reads the committed `.keras` model with zipfile and h5py.
"""
