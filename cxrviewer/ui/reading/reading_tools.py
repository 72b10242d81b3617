"""Everything issue 14 adds to reading, put into a main window in one call (and in the order
the parts need): the measurement tools, the per-image
reading state (which saves the measurements too), Undo/Redo of annotations and cine."""

from __future__ import annotations


def install(window) -> None:
    """Set ``window.measure_tools``, ``.reading_state``, ``.annotation_history``, ``.cine``."""
    from cxrviewer.ui.reading.annotation_history import install as install_history
    from cxrviewer.ui.reading.cine import install as install_cine
    from cxrviewer.ui.reading.measure_tools import install as install_measure_tools
    from cxrviewer.ui.reading.reading_state import install as install_reading_state

    window.measure_tools = install_measure_tools(window)
    window.reading_state = install_reading_state(window)  # after the tools: it saves them
    window.annotation_history = install_history(window)  # after the state: restored → reset
    window.cine = install_cine(window)
