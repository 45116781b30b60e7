"""The report panel: a study's reviews, SRs, KOS and PDFs, and SR rendered as HTML."""
