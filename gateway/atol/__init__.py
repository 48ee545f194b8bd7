"""The ATOL task contract: parsing tasks, mapping names, shaping results."""
