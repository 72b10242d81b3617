"""The study browser: the study tree, thumbnails and the worklist."""
