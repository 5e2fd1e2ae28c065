"""`python -m app.train`: train the Dense MNIST network (see app.training.train)."""

import sys

from app.training.train import main

if __name__ == "__main__":
    sys.exit(main())
