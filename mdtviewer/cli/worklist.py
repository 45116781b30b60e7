"""``mdtviewer worklist [--folder DIR ...] [--node NAME] [--json]``: what awaits a trainer or second reader.

Argument parsing and printing only; the work is :func:`mdtviewer.workflows.logbook.trainer_worklist`.
Lists drafts awaiting sign-off, reviews amended since the worklist was last
shown (then remembered as seen, in the data folder) and second-opinion
requests (unsigned second opinions without an agreement grade).  ``--json``
prints ``{drafts, amended, second_opinion_requests}``, each a list of
``{sop_instance_uid, study_instance_uid, path, kind, author, trainee, protocol,
study_date, signed, amends}``.

Exit status: 0 done, 1 a PACS could not be asked, 2 usage error.
"""

from __future__ import annotations

import argparse
import json

from mdtviewer.cli.logbook import common_options, report_collection, run


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mdtviewer worklist", description="Drafts awaiting sign-off, amended "
                                "reviews not yet seen, second-opinion requests.")
    common_options(p, dates=False, exports=False)

    def body(a) -> int:
        from mdtviewer.workflows import logbook as lb

        rep = lb.trainer_worklist(a.folder, a.node)
        rc = report_collection(rep.collection)
        wl = rep.worklist
        if a.json:
            print(json.dumps(wl.to_json(), ensure_ascii=False, indent=1))
            return rc
        for label, items in (("awaiting sign-off", wl.drafts), ("amended since last seen", wl.amended),
                             ("second-opinion requests", wl.requests)):
            print(f"{label}: {len(items)}")
            for r in items:
                who = f"trainee {r.trainee}" if r.trainee else f"by {r.author}"
                print(f"  {r.kind:<15} {r.protocol or '-':<22} {who:<30} {r.study_date}  {r.path}")
        return rc

    return run(body, lambda: p.parse_args(argv))
