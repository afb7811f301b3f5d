"""The PyTorch model. Importing this package imports torch; the rest of ``inference`` does not."""
