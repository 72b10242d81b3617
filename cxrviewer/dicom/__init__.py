"""DICOM objects out: Secondary Capture, TID 1500 SR and GSPS writers, their readers, and
de-identified copies (highdicom, dicognito, pydicom; no Qt).

The writers take the *source image's* dataset (its header is enough) and return a
``pydicom.Dataset`` in the source study (same Study Instance UID and patient module, a new
series, new UIDs, references to the source image). Saving is separate
(:func:`cxrviewer.dicom.common.write_dataset`, atomic), so the network layer can send the
same objects without touching a disk:

* :func:`cxrviewer.dicom.sc.make_sc` -- the annotated view or the native image with
  heatmap and annotations, "NOT FOR DIAGNOSTIC USE" burned in.
* :func:`cxrviewer.dicom.sr.make_sr` -- Comprehensive 3D SR, TID 1500 measurement report:
  the AI result and the reader's measurements.
* :func:`cxrviewer.dicom.gsps.make_gsps` -- Grayscale Softcopy Presentation State: window,
  rotation/flip, measurements and text.
* :func:`cxrviewer.dicom.sr.read_ai_results`, :func:`cxrviewer.dicom.gsps.read_gsps` -- back
  into the viewer.
* :func:`cxrviewer.dicom.build.export_object` -- build + (de-identify) + write, as the CLI's
  ``export --dicom`` and the viewer's *Export as DICOM...* do.
* :func:`cxrviewer.dicom.deid.deidentify` -- PS3.15 Basic Profile through dicognito, with the
  list of what changed.
"""
