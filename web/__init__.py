"""The HTTP layer: it only translates requests to and from the pipeline in `model/`."""
