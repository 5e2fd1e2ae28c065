"""`python -m app.serve`: the server (see app.serving.server)."""

if __name__ == "__main__":
    # Imported here, not above: the processes that decode images for the server import the
    # main module again (multiprocessing does), and need none of the server for it.
    from app.serving.server import main

    main()
