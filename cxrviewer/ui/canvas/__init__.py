"""The image canvas, its items and overlay, the viewport grid and the window/level panel."""
