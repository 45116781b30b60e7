"""Information governance: de-identification (PS3.15 Table E.1-1), export, encrypted archives.
Never imports ``workflows`` or ``ui``."""
