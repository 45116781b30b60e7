"""The Structured Report format only: review and measurement models, codes, protocols, the
writers (highdicom) and the tolerant readers, text rendering.  No network: ``sr`` and ``pacs``
never import each other (``workflows`` joins them)."""
