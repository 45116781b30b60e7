"""Where SR meets PACS and the user's work: writing and sending reviews, looking up a study's
reports on PACS, review form state, report files for the panel, logbook and audit, MDT sessions.
Never imports ``governance`` or ``ui``."""
