"""Documented resource limits, checked *before* allocating."""

#: Largest decoded pixel buffer we accept for one image (all frames), in bytes; also the
#: largest float32 working copy of one grayscale frame (Modality LUT output), so the largest
#: grayscale frame is 16384 x 16384. Checked from the header before anything is decoded.
#: A 43x43 cm detector at 0.1 mm is 4300x4300x2 bytes = 37 MB; 1 GiB leaves ample room
#: for multi-frame and colour images while refusing hostile headers (65535x65535x3x8).
MAX_PIXEL_BYTES = 1 << 30

#: Largest Rows or Columns we accept.
MAX_DIMENSION = 32768

#: Largest NumberOfFrames we accept.
MAX_FRAMES = 4096
