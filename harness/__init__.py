"""What tests and benchmarks share, and nothing serving uses: paths, real servers, load, a real browser."""
