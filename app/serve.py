"""`python -m app.serve`: the server (see app.serving.server)."""

from app.serving.server import main

if __name__ == "__main__":
    main()
