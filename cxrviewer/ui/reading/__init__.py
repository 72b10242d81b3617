"""The reading tools: measurements, reading state, undo history, cine, prior comparison."""
