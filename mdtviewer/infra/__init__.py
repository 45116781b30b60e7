"""Infrastructure every room may use: data-folder paths, typed settings, atomic writes, the audit
trail, identifier-free logging, the one error base (``MdtError``) and a one-page PDF writer.
Imports nothing of mdtviewer."""
