"""`python -m app.evaluate`: measure a model, raw and canvas-realistic (see
app.training.evaluate)."""

import sys

from app.training.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
