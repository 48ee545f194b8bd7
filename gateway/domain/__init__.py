"""The domain: fiscal documents and the one exception tree, free of any I/O."""
