"""PACS networking for the viewer (Qt-free): nodes, query, retrieve, store, local store, outbox.

Public API (everything else is internal)::

    from mdtviewer.pacs.nodes import PacsNode, load_nodes, save_nodes, get_node, add_node, remove_node
    from mdtviewer.pacs.client import (PacsClient, PacsError, StudyQuery, StudyResult, SeriesResult,
                                       EchoResult, RetrieveProgress, RetrieveResult, StoreResult,
                                       audit_retrieve)
    from mdtviewer.pacs.localstore import LocalStore
    from mdtviewer.pacs import outbox   # queue, pending, flush, send_or_queue, AutoRetry

    node = get_node("main")
    with PacsClient(node) as client:              # keeps one association for echo/find/C-MOVE
        client.echo()                              # EchoResult(ok, message); never raises
        studies = client.find_studies(StudyQuery(patient_id="123"))   # PacsError on failure
        client.find_series(studies[0].study_instance_uid)
        res = client.retrieve(studies[0].study_instance_uid, LocalStore(),
                              progress=..., cancel=threading.Event(), on_instance=...)
        res.ok, res.message, res.paths           # "retrieved N of M instances ..."
        client.retrieve(uid, LocalStore(), select=lambda ref: ref.sop_class_uid.startswith(SR))  # a subset
    outbox.send_or_queue([sr_path], node)        # stored, or kept and retried later

    # a node is DIMSE or DICOMweb (PacsNode.dicomweb(name, url, user=..., password_env=...)):
    from mdtviewer.pacs.connect import open_client   # PacsClient or dicomweb.DicomWebClient, same interface
    with open_client(node) as client:
        client.find_studies(StudyQuery(patient_id="123"))   # C-FIND or QIDO-RS
        client.retrieve(uid, LocalStore())                  # C-GET/C-MOVE or WADO-RS

    from mdtviewer.workflows.report_lookup import fetch_study_reports   # reviews/reports only on the PACS
    fetch_study_reports(study_uid)               # -> ReportLookup(fetched, on_pacs, problems, message)

Shell: ``mdtviewer pacs ...`` (:mod:`mdtviewer.cli.pacs`).  UI: :mod:`mdtviewer.ui.dialogs.pacs_dialog`.
"""
