"""The AI in the viewer: model controller, prediction panel, heatmap, model dialogs, precision."""
