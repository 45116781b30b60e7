"""``mdtviewer audit discrepancies [--folder DIR ...] [--node NAME] [--from YYYYMMDD] [--to YYYYMMDD]
[--json | --csv FILE | --pdf FILE] [--show-identifiers]``: peer-review discrepancy audit.

Argument parsing and printing only; the work is :func:`mdtviewer.workflows.logbook.discrepancies`.
Counts signed second opinions.  ``--json`` prints ``{reviews, by_agreement: {agree,
minor-discrepancy, major-discrepancy}, by_score: {1, 2a, 2b, 3a, 3b, unscored},
by_reporter: {...}}`` and also ``rates`` (count, rate, 95 % Wilson ``ci95``),
``by_protocol``, ``by_period``, ``by_mdt_outcome`` and ``major_discrepancies``.

Exit status: 0 done, 1 a PACS could not be asked, 2 usage error.
"""

from __future__ import annotations

import argparse
import json

from mdtviewer.cli.logbook import common_options, report_collection, run


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mdtviewer audit", description="Audits built from the review SRs.")
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("discrepancies", help="second-opinion discrepancy rates by reporter, study type, month")
    common_options(d)

    def body(a) -> int:
        from mdtviewer.workflows import logbook as lb

        rep = lb.discrepancies(a.folder, a.node, a.date_from, a.date_to)
        rc = report_collection(rep.collection)
        if a.json:
            print(json.dumps(rep.audit.to_json(a.show_identifiers), ensure_ascii=False, indent=1))
        elif a.csv:
            print(f"wrote {lb.write_export(lb.audit_csv(rep.audit, a.show_identifiers), a.csv)}")
        elif a.pdf:
            print(f"wrote {lb.write_export(lb.audit_pdf(rep.audit, a.show_identifiers), a.pdf)}")
        else:
            j = rep.audit.to_json()
            r = j["rates"]
            print(
                f"{j['reviews']} signed second opinion(s): "
                + ", ".join(f"{k} {v}" for k, v in j["by_agreement"].items())
            )
            for key in ("discrepancy", "major"):
                if r[key]["rate"] is None:
                    print(f"  {key} rate {lb.NO_RATE} (no signed second opinions)")
                    continue
                lo, hi = r[key]["ci95"]
                print(f"  {key} rate {100 * r[key]['rate']:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)")
            print("  scores: " + ", ".join(f"{k} {v}" for k, v in j["by_score"].items()))
            for name, g in j["by_reporter"].items():
                print(
                    f"  {name}: {g['reviews']} reviewed, {g['minor-discrepancy']} minor, {g['major-discrepancy']} major"
                )
            for m in j["major_discrepancies"]:
                print(f"  major: case {m['case']} ({m['study_date']}) study {m['study_instance_uid']}")
        return rc

    return run(body, lambda: p.parse_args(argv))
