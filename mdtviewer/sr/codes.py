"""Coded concepts used in our review SRs, and why each was chosen.

Standard codes are used wherever DICOM (PS3.16), LOINC or SNOMED CT has one;
the few concepts that exist nowhere in those (UK vascular-science roles,
review type, agreement grades below "disagreement", preceptorship outcome)
use the private coding scheme designator ``99MDTV``, declared in every SR we
write through the Coding Scheme Identification Sequence (0008,0110).  Views of
a department's protocol use ``99MDTVVIEW`` with the view id of the protocol
file as the code value.

Standard codes
--------------
Document and sections (TID 2000 pattern, CID 7000 / CID 7001)
  (18748-4, LN, "Diagnostic Imaging Report")  document title (CID 7000)
  (59776-5, LN, "Findings")                    section: views, image quality, comments
  (55110-1, LN, "Conclusions")                 section: agreement, outcome, summary
  (55113-5, LN, "Key Images")                  section: images referenced without a comment
Observer context (TID 1001/1002)
  (121005, DCM, "Observer Type") = (121006, DCM, "Person")
  (121008, DCM, "Person Observer Name")
  (121009, DCM, "Person Observer's Organization Name")
  (121010, DCM, "Person Observer's Role in the Organization")
  (121011, DCM, "Person Observer's Role in this Procedure"), values (CID 7453):
      (C28747, NCIt, "Reader")      reporting scientist
      (C54634, NCIt, "Reviewer")    second reader, trainer
      (121094, DCM, "Performing")   trainee (performed the scan under review)
Findings and conclusions
  (121106, DCM, "Comment")                      comment on an image or frame
  (121111, DCM, "Summary")                      overall summary text
  (125203, DCM, "Acquisition Protocol")         id of the local protocol (minimum image set)
  (52101004, SCT, "Present") / (272519000, SCT, "Absent")   a protocol view is present / missing
  (111101, DCM, "Image Quality")                quality rating of one image / frame, values (CID 3114):
      (122741, DCM, "Good image quality"), (122742, DCM, "Poor image quality")
  (122775, DCM, "Agreement with prior findings")  second opinion: agree
  (125201, DCM, "Illustration of Finding")       concept of the IMAGE a view/rating/comment is inferred from
  (121080, DCM, "Best illustration of finding")  concept of a key IMAGE

Private codes (scheme 99MDTV; no standard code exists)
------------------------------------------------------
  REVIEWTYPE       "Review type"              = SECONDOPINION "Second opinion"
                                              | PRECEPTORSHIP "Preceptorship assessment"
  AGREEMENT        "Agreement with original report" = 122775 DCM (agree)
                                              | MINORDISCREP "Minor discrepancy" | MAJORDISCREP "Major discrepancy"
  REASON           "Reason"                   reason for an agreement grade or a quality rating (child of that item)
  ADEQUATE         "Adequate image quality"   (CID 3114 has good and poor but no "adequate")
  OUTCOME          "Preceptorship outcome"    = COMPETENT "Competent" | NEEDSSUPERVISION "Needs supervision"
  PROTOCOLVIEWS    "Protocol views"           container of the protocol's required views
  PEERSCORE        "Peer review score"        RADPEER-style score (no standard code for the concept or values):
      RADPEER1 "Concur with interpretation", RADPEER2A / RADPEER2B "Discrepancy not ordinarily
      expected to be made, unlikely / likely clinically significant", RADPEER3A / RADPEER3B
      "Discrepancy that should be made most of the time, unlikely / likely clinically significant"
  MDTOUTCOME       "MDT outcome"              = REPORTCONFIRMED "Report confirmed" | DISCREPFOUND
      "Discrepancy found" | FURTHERIMAGING "Further imaging"  (LOINC/SNOMED have no MDT-review outcome)
  REPORTER         "Author of the reviewed report" TEXT: the reporter whose report a second opinion grades
  Organisational roles (121010; CID 7452 has no UK vascular-science roles):
  REPORTINGSCI "Reporting vascular scientist", SECONDREADER "Second reader",
  TRAINEE "Trainee vascular scientist", TRAINER "Trainer (preceptor)"
"""

from __future__ import annotations

from dataclasses import dataclass

PRIVATE_SCHEME = "99MDTV"
VIEW_SCHEME = "99MDTVVIEW"
PRIVATE_SCHEME_NAME = "mdtviewer review concepts"
VIEW_SCHEME_NAME = "mdtviewer protocol views (code value = view id in resources/protocols)"
PRIVATE_SCHEME_ORG = "mdtviewer project"


@dataclass(frozen=True)
class C:
    """A coded concept (value, scheme, meaning): hashable, comparable by value+scheme."""

    value: str
    scheme: str
    meaning: str

    def same(self, other) -> bool:
        """True when *other* (anything with value/scheme) is the same concept."""
        if other is None:
            return False
        return self.value == getattr(other, "value", None) and self.scheme == getattr(other, "scheme", None)


def _p(value: str, meaning: str) -> C:
    assert len(value) <= 16, value  # Code Value is SH
    return C(value, PRIVATE_SCHEME, meaning)


# document and sections
TITLE = C("18748-4", "LN", "Diagnostic Imaging Report")
FINDINGS = C("59776-5", "LN", "Findings")
CONCLUSIONS = C("55110-1", "LN", "Conclusions")
KEY_IMAGES = C("55113-5", "LN", "Key Images")

# observer context
OBSERVER_TYPE = C("121005", "DCM", "Observer Type")
PERSON = C("121006", "DCM", "Person")
PERSON_NAME = C("121008", "DCM", "Person Observer Name")
PERSON_ORG = C("121009", "DCM", "Person Observer's Organization Name")
ROLE_IN_ORG = C("121010", "DCM", "Person Observer's Role in the Organization")
ROLE_IN_PROC = C("121011", "DCM", "Person Observer's Role in this Procedure")
READER = C("C28747", "NCIt", "Reader")
REVIEWER = C("C54634", "NCIt", "Reviewer")
PERFORMING = C("121094", "DCM", "Performing")

# findings / conclusions
COMMENT = C("121106", "DCM", "Comment")
SUMMARY = C("121111", "DCM", "Summary")
ACQ_PROTOCOL = C("125203", "DCM", "Acquisition Protocol")
PRESENT = C("52101004", "SCT", "Present")
ABSENT = C("272519000", "SCT", "Absent")
IMAGE_QUALITY = C("111101", "DCM", "Image Quality")
GOOD_QUALITY = C("122741", "DCM", "Good image quality")
POOR_QUALITY = C("122742", "DCM", "Poor image quality")
AGREE = C("122775", "DCM", "Agreement with prior findings")
SOURCE_IMAGE = C("125201", "DCM", "Illustration of Finding")
KEY_IMAGE = C("121080", "DCM", "Best illustration of finding")

# private
REVIEW_TYPE = _p("REVIEWTYPE", "Review type")
SECOND_OPINION = _p("SECONDOPINION", "Second opinion")
PRECEPTORSHIP = _p("PRECEPTORSHIP", "Preceptorship assessment")
AGREEMENT = _p("AGREEMENT", "Agreement with original report")
MINOR_DISCREPANCY = _p("MINORDISCREP", "Minor discrepancy")
MAJOR_DISCREPANCY = _p("MAJORDISCREP", "Major discrepancy")
REASON = _p("REASON", "Reason")
ADEQUATE_QUALITY = _p("ADEQUATE", "Adequate image quality")
OUTCOME = _p("OUTCOME", "Preceptorship outcome")
COMPETENT = _p("COMPETENT", "Competent")
NEEDS_SUPERVISION = _p("NEEDSSUPERVISION", "Needs supervision")
PROTOCOL_VIEWS = _p("PROTOCOLVIEWS", "Protocol views")
PEER_SCORE = _p("PEERSCORE", "Peer review score")
MDT_OUTCOME = _p("MDTOUTCOME", "MDT outcome")
REPORTER = _p("REPORTER", "Author of the reviewed report")
#: COMPOSITE: the report (SR or encapsulated PDF) a second opinion grades
GRADED_REPORT = _p("GRADEDREPORT", "Report under review")
#: TEXT: a second opinion signed knowingly without naming the report it grades
NO_GRADED_REPORT = _p("NOGRADEDREPORT", "No report graded")
NO_GRADED_REPORT_TEXT = "Signed without naming the report under review"
ROLE_REPORTING_SCIENTIST = _p("REPORTINGSCI", "Reporting vascular scientist")
ROLE_SECOND_READER = _p("SECONDREADER", "Second reader")
ROLE_TRAINEE = _p("TRAINEE", "Trainee vascular scientist")
ROLE_TRAINER = _p("TRAINER", "Trainer (preceptor)")

# model value <-> code tables (one place, used by writer and reader)
KIND_CODES = {"second-opinion": SECOND_OPINION, "preceptorship": PRECEPTORSHIP}
AGREEMENT_CODES = {"agree": AGREE, "minor-discrepancy": MINOR_DISCREPANCY, "major-discrepancy": MAJOR_DISCREPANCY}
QUALITY_CODES = {"good": GOOD_QUALITY, "adequate": ADEQUATE_QUALITY, "poor": POOR_QUALITY}
OUTCOME_CODES = {"competent": COMPETENT, "needs-supervision": NEEDS_SUPERVISION}
PEER_SCORE_CODES = {
    "1": _p("RADPEER1", "Concur with interpretation"),
    # RADPEER's own words: 2 "discrepancy in interpretation / not ordinarily expected to be made
    # (understandable miss)", 3 "... should be made most of the time" (Code Meaning is LO: 64 characters)
    "2a": _p("RADPEER2A", "Understandable miss, unlikely clinically significant"),
    "2b": _p("RADPEER2B", "Understandable miss, likely clinically significant"),
    "3a": _p("RADPEER3A", "Should be made most of the time, unlikely clinically significant"),
    "3b": _p("RADPEER3B", "Should be made most of the time, likely clinically significant"),
}
MDT_OUTCOME_CODES = {
    "report-confirmed": _p("REPORTCONFIRMED", "Report confirmed"),
    "discrepancy-found": _p("DISCREPFOUND", "Discrepancy found"),
    "further-imaging": _p("FURTHERIMAGING", "Further imaging"),
}
#: role -> (role in the organisation, role in this procedure)
ROLE_CODES = {
    "reporting-scientist": (ROLE_REPORTING_SCIENTIST, READER),
    "second-reader": (ROLE_SECOND_READER, REVIEWER),
    "trainee": (ROLE_TRAINEE, PERFORMING),
    "trainer": (ROLE_TRAINER, REVIEWER),
}


def lookup(table: dict[str, C], code) -> str | None:
    """The model value whose code matches *code* (value + scheme), or None."""
    for key, c in table.items():
        if c.same(code):
            return key
    return None


def view_code(view_id: str, label: str) -> C:
    return C(view_id, VIEW_SCHEME, label or view_id)
