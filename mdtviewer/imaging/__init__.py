"""Pixels and time: codecs within a decode budget, colour, one frame at a time to display-ready
uint8, the byte-bounded frame cache, the one cine clock, ultrasound regions and calibrated
measurement, burned-in text, masking templates, ``check``.  Imports ``dicom`` and ``infra``."""
