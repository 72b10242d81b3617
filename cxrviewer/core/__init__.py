"""Qt-free, torch-free core: study index, pixel decoding, display pipeline (numpy + pydicom)."""
