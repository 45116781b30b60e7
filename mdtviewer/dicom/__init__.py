"""DICOM as data: UIDs and instance kinds, tolerant value accessors and formatters, the robust
reader and the one-pass header reader, DICOMDIR, the folder walker, the index and its
Patient > Study > Series > Instance model, KOS rules.  Imports only ``infra``."""
