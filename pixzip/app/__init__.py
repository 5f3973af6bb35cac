"""The application around the codec: files on disk (naming, safety, delivery),
the benchmark and the demo."""
