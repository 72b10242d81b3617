"""What every feature of the UI may use: settings and the image/scan/thumbnail loaders."""
