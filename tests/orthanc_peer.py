"""Orthanc test PACS fixtures (filled in by the PACS work)."""
