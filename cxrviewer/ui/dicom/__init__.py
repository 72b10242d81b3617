"""DICOM objects from the viewer: SC/SR/GSPS export, stored AI results, presentation states."""
