"""The reader's call in the viewer (issue 22): Normal / Abnormal in one keystroke, Agree /
Disagree with the AI result on screen, per-finding verdicts for a multi-finding model, a note;
the call on the image's row in the study browser and the worklist; the model card's agreement
with this site's readers; the Train dialog's "Reader feedback" data source.

Built on the Qt-free store :mod:`cxrviewer.feedback`; the shell installs it
(:func:`cxrviewer.ui.feedback.integration.install`) and hands it the viewer model and the
browser's ``set_calls``, as for every feature (features never import each other).
"""
