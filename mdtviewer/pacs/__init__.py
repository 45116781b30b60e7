"""PACS networking: nodes, C-ECHO/C-FIND/C-GET/C-MOVE/C-STORE, local store, outbox.

Qt-free.  The UI and the SR code use :mod:`.client`, :mod:`.localstore` and
:mod:`.outbox`; ``mdtviewer pacs ...`` is :mod:`.cli`.
"""
