"""One interface for both kinds of node: :func:`open_client` gives the client of a node's kind.

:class:`~mdtviewer.pacs.client.PacsClient` (DIMSE) and
:class:`~mdtviewer.pacs.dicomweb.DicomWebClient` (DICOMweb) have the same methods, result types,
caps and one-line messages; callers (the pacs CLI, report lookup, MDT prefetch, the outbox, the
PACS dialog) take a :class:`PacsConnection` from here and need not know the kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from mdtviewer.pacs.client import (
    MAX_INSTANCES,
    MAX_SERIES,
    MAX_STUDIES,
    Cancel,
    EchoResult,
    Found,
    InstanceRef,
    PacsClient,
    RetrieveProgress,
    RetrieveResult,
    StoreResult,
    StudyQuery,
)
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode


class PacsConnection(Protocol):
    """What callers use of a node, whatever its kind (:class:`PacsClient` for DIMSE,
    :class:`mdtviewer.pacs.dicomweb.DicomWebClient` for DICOMweb): make one with
    :func:`open_client`."""

    node: PacsNode

    def echo(self) -> EchoResult: ...
    def find_studies(self, query: StudyQuery, cancel: Cancel = None) -> Found: ...
    def find_series(self, study_uid: str, cancel: Cancel = None) -> Found: ...
    def find_instances(self, study_uid: str, cancel: Cancel = None) -> Found: ...
    def retrieve(
        self,
        study_uid: str,
        dest_store: LocalStore | None = None,
        *,
        method: str | None = None,
        progress: Callable[[RetrieveProgress], None] | None = None,
        cancel: Cancel = None,
        on_instance: Callable[[Path], None] | None = None,
        select: Callable[[InstanceRef], bool] | None = None,
    ) -> RetrieveResult: ...
    def store(self, paths: Iterable[str | os.PathLike]) -> StoreResult: ...
    def close(self) -> None: ...
    def __enter__(self) -> PacsConnection: ...
    def __exit__(self, *exc) -> None: ...


def open_client(node: PacsNode, *, max_studies: int = MAX_STUDIES, max_series: int = MAX_SERIES,
                max_instances: int = MAX_INSTANCES) -> PacsConnection:
    """The client for *node*'s kind (DIMSE or DICOMweb), with the same caps on query answers.
    Use it as a context manager, as :class:`PacsClient`."""
    if node.is_dicomweb:
        from mdtviewer.pacs.dicomweb import DicomWebClient

        return DicomWebClient(node, max_studies=max_studies, max_series=max_series, max_instances=max_instances)
    return PacsClient(node, max_studies=max_studies, max_series=max_series, max_instances=max_instances)
