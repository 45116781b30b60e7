"""Dialogs: PACS query/retrieve, export, scanner masking templates."""
