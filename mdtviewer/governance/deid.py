"""De-identification: DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Why this module and not a library call
--------------------------------------
The profile is defined by PS3.15 Table E.1-1 (several hundred attributes, each
with an action code D/Z/X/U and compound codes such as X/Z/D).  We do not keep
our own short list: the table is read at run time from the ``dicom-anonymizer``
package (KitwareMedical, BSD), whose ``dicomfields_2026c`` module is scraped
from the standard's own Table E.1-1 (edition 2026c; older editions are used if
that one is missing).  ``dicognito`` was evaluated as the engine: on our
ultrasound corpus it leaves 23 attributes that Table E.1-1 lists (Study/Series
Description, Device Serial Number, Protocol Name, Patient Age/Sex/Size/Weight,
Image Comments, Requested Procedure Description, Study Time, ...) and keeps
private tags, so it cannot claim the Basic Profile on its own.  The engine here
applies the table's actions itself and adds the profile's other rules.

What is done (and the choices made where the standard offers several)
---------------------------------------------------------------------
* Every attribute of Table E.1-1, at any depth (inside sequences too):
  ``X`` removed; ``Z`` emptied; ``D`` replaced by a dummy of the right VR;
  ``U`` replaced by a new UID; compound codes resolve to the strictest that
  keeps the object usable: ``X/Z``, ``X/D``, ``X/Z/D`` -> removed, ``Z/D`` ->
  emptied, ``X/Z/U*`` (Referenced/Source Image Sequence) -> kept with every
  UID inside replaced, so references still resolve.  Sequences marked ``D``
  (e.g. Content Sequence of an SR) are kept and cleaned recursively.
* Patient Name and Patient ID (``Z``, ``Z/D``) receive a pseudonym
  (ID ``MDTV-xxxxxxxx``, name ``MDTV^xxxxxxxx``) that is the same for every file of one patient within
  one export, so viewers still group the images by patient.
* Private attributes (and their creators) are removed (the profile's rule
  without the Retain Safe Private option); curve data per the table, overlay
  planes (60xx) removed whole (their text would survive as graphics otherwise); unparseable elements
  and stray item tags are removed; group lengths are dropped (pydicom recomputes what it needs).
* Free text the table keeps (an SR's Text Value, comments in LO/ST/LT/UT)
  is scrubbed of the patient's own name, IDs, accession number and birth
  date as typed (:func:`free_text_pattern`), of every calendar date, and
  its UIDs are replaced by the same new UIDs as the header's: OsiriX, for
  one, writes the patient's name, ID, birth date and the study's UIDs into
  the TEXT items of its SRs.
* SR TEXT items whose concept names a person, organisation, device or place
  (e.g. DCM 121009 Person Observer's Organization Name; :func:`identifying_concept`)
  are replaced whatever they say.
* Encapsulated Document (action D): the PDF or CDA itself may name the
  patient anywhere, so it is replaced by a valid placeholder document
  (:func:`placeholder_document`), keeping the instance valid (Type 1).
* Compound codes that the IOD constrains: in SR/KOS, Content Date/Time
  (Z/D, Type 1) get a dummy, and Referenced Performed Procedure Step Sequence
  (X/Z/D, Type 2) is kept empty, so exported reports still pass dsrdump.
* Stricter than the table: every remaining PN value is emptied, and every
  remaining DA/DT value is removed (or shifted, see below); every remaining
  instance UID (anything not a class/transfer-syntax/coding-scheme UID and not
  a well-known UID) is replaced, so no original UID survives anywhere.
* UIDs: one :class:`Deidentifier` per export holds the mapping; a new UID is
  ``2.25.<HMAC-SHA256(export secret, old UID)>``, so the same old UID always
  maps to the same new one within the export (series, studies, SR/KOS
  references, Referenced SOP Instance UIDs in sequences all still match), and
  two exports are not linkable (fresh random secret unless one is given).
* ``keep_dates`` (Retain Longitudinal Temporal Information with Modified Dates
  Option, code 113107): every DA/DT is shifted back by a per-patient whole
  number of days (365..3650, from the HMAC of the patient key), times of day
  are kept, so intervals between a patient's studies survive.  Patient's Birth
  Date is emptied in every case (a direct identifier in the guidance we follow);
  Patient's Birth Time and GPS Time Stamp, which Table E.1-1 leaves out of the
  option (:data:`NOT_LONGITUDINAL`), are removed as the basic profile says;
  Timezone Offset From UTC, which it does cover, is kept (:data:`KEPT_WITH_MODIFIED_DATES`).
  Without ``keep_dates`` dates follow the table (removed/emptied/dummy).
* Set afterwards: Patient Identity Removed = YES, De-identification Method
  (text), De-identification Method Code Sequence (CID 7050: 113100 always,
  113101 Clean Pixel Data when the pixels were masked, 113107 when dates were
  shifted), Longitudinal Temporal Information Modified (MODIFIED/REMOVED), and
  Burned In Annotation = NO only when the pixels were masked by
  :mod:`mdtviewer.imaging.masking`.

The original files are never modified: callers pass a dataset read into memory
and write the result elsewhere (see :mod:`mdtviewer.governance.export`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import hmac
import importlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID_dictionary

from mdtviewer.dicom import uids
from mdtviewer.dicom import values as dv
from mdtviewer.infra.errors import MdtError

#: Table E.1-1 editions we can load, newest first (modules of dicom-anonymizer)
TABLE_MODULES = ("dicomfields_2026c", "dicomfields_2024b", "dicomfields_2023")
_CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

#: CID 7050 De-identification Method codes (scheme DCM)
CODE_BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
CODE_CLEAN_PIXEL = ("113101", "Clean Pixel Data Option")
CODE_MODIFIED_DATES = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")

#: UI attributes that name a scheme or a standard thing, not an instance
_NON_INSTANCE_UI = {
    "TransferSyntaxUID",
    "CodingSchemeUID",
    "MappingResourceUID",
    "ContextGroupExtensionCreatorUID",
    "PrivateInformationCreatorUID",
    "ImplementationClassUID",
    "ReferencedTransferSyntaxUIDInFile",
}

#: Date/time attributes of Table E.1-1 that the Retain Longitudinal Temporal Information Modified Dates
#: Option (PS3.15 E.3.6) does not cover: the table has no "C" for them in its "Rtn. Long. Modif. Dates Opt."
#: column.  The option keeps the timeline of the *studies* (acquisition, series, content, procedure step...);
#: a birth time or a GPS fix time is not part of it and follows the basic profile (X) with --keep-dates too.
#: (Patient's Birth Date is emptied in every case, above.)
NOT_LONGITUDINAL = frozenset({
    0x00100030,  # Patient's Birth Date (Z)
    0x00100032,  # Patient's Birth Time (X)
    0x00160077,  # GPS Time Stamp (X); GPS Date Stamp (0016,008D) does have the C
})
#: Attributes that are not DA/DT/TM but have the option's "C" in Table E.1-1: kept as they are with
#: ``keep_dates``.  Timezone Offset From UTC (0008,0201) is the offset the kept times of day are in (DT
#: values keep their own &ZZXX suffix too); removing it (the basic X) would make the kept times ambiguous.
#: The other two non-date "C" rows are binary and cannot be shifted: Certified Timestamp (0400,0310), an
#: RFC 3161 token signing a removed signature, stays removed; Frame Origin Timestamp (0034,0007) keeps the
#: basic profile's dummy (a zero timestamp of no meaning, which C allows).  Checked against the independent
#: copy of the table in tests/test_deid_table.py.
KEPT_WITH_MODIFIED_DATES = frozenset({0x00080201})

#: file-meta attributes that can name a station or carry private data
_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)

_DUMMY_TEXT = "MDTV REMOVED"
_PSEUDO_PREFIX = "MDTV-"

_MAX_LEN = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240}


class DeidentificationError(MdtError):
    """The data set could not be de-identified (one line, no identifiers)."""


@dataclass(frozen=True)
class ProfileTable:
    """PS3.15 Table E.1-1 as loaded: exact tags and masked (repeating-group) rows."""

    edition: str
    exact: dict[int, str]
    masked: tuple[tuple[int, int, str], ...]  # (value, mask, action)

    def action(self, tag: int) -> str | None:
        a = self.exact.get(int(tag))
        if a is not None:
            return a
        for value, mask, act in self.masked:
            if int(tag) & mask == value:
                return act
        return None

    def __len__(self) -> int:
        return len(self.exact) + len(self.masked)


@functools.lru_cache(maxsize=1)
def basic_profile_table() -> ProfileTable:
    """Load Table E.1-1 (newest edition available) from dicom-anonymizer."""
    last_exc: Exception | None = None
    for name in TABLE_MODULES:
        try:
            mod = importlib.import_module(f"dicomanonymizer.dicom_anonymization_databases.{name}")
        except ImportError as exc:
            last_exc = exc
            continue
        exact: dict[int, str] = {}
        masked: list[tuple[int, int, str]] = []
        for cat, action in _CATEGORIES.items():
            for row in getattr(mod, cat, []):
                if len(row) == 2:
                    exact[(row[0] << 16) | row[1]] = action
                elif len(row) == 4:
                    g, e, gm, em = row
                    mask = (gm << 16) | em
                    masked.append((((g << 16) | e) & mask, mask, action))
        return ProfileTable(edition=name.replace("dicomfields_", ""), exact=exact, masked=tuple(masked))
    raise DeidentificationError(
        f"the PS3.15 Table E.1-1 data is missing: install the 'dicom-anonymizer' package ({type(last_exc).__name__})"
    )


@dataclass
class DeidReport:
    """What was done to one data set (counts only: nothing identifying)."""

    removed: int = 0
    emptied: int = 0
    replaced: int = 0
    uids_replaced: int = 0
    private_removed: int = 0
    dates_shifted: int = 0
    unreadable_removed: int = 0
    #: free-text values from which the patient's own identifiers were removed
    scrubbed: int = 0
    pseudonym: str = ""


@dataclass
class Deidentifier:
    """One export's de-identification state: UID map, pseudonyms, date offsets.

    Use one instance for every file of an export so that UIDs, pseudonyms and
    date offsets are consistent across the files.
    """

    keep_dates: bool = False
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    uid_map: dict[str, str] = field(default_factory=dict)
    #: original patient identifiers seen (for log redaction; never written out)
    seen_identifiers: set[str] = field(default_factory=set)

    # -- derived values -----------------------------------------------------
    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.secret, f"{kind}\x00{value}".encode("utf-8", "replace"), hashlib.sha256).digest()

    def new_uid(self, old: str) -> str:
        """The replacement for *old* (same answer for the same *old* within this export)."""
        old = str(old).strip().rstrip("\x00")
        new = self.uid_map.get(old)
        if new is None:
            n = int.from_bytes(self._digest("uid", old)[:16], "big")
            new = f"2.25.{n}"
            self.uid_map[old] = new
        return new

    def pseudonym(self, patient_key: str) -> str:
        return _PSEUDO_PREFIX + self._digest("patient", patient_key)[:4].hex().upper()

    def date_offset_days(self, patient_key: str) -> int:
        """Whole days to shift this patient's dates by (negative: into the past)."""
        n = int.from_bytes(self._digest("dates", patient_key)[:4], "big")
        return -(365 + n % (3650 - 365 + 1))

    @staticmethod
    def patient_key(ds: Dataset) -> str:
        pid = dv.text(ds, "PatientID").strip()
        issuer = dv.text(ds, "IssuerOfPatientID").strip()
        if pid:
            return f"id:{issuer}:{pid}"
        name = dv.text(ds, "PatientName").strip()
        if name:
            return f"name:{name}"
        return f"study:{ds.get('StudyInstanceUID', '')}"

    # -- the profile --------------------------------------------------------
    def deidentify(self, ds: Dataset, *, pixels_cleaned: bool = False) -> DeidReport:
        """De-identify *ds* in place (a copy in memory; never the original file)."""
        table = basic_profile_table()
        report = DeidReport()
        key = self.patient_key(ds)
        for kw in ("PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber"):
            v = dv.text(ds, kw).strip()
            if v:
                self.seen_identifiers.add(v)
        pseudo = self.pseudonym(key)
        offset = self.date_offset_days(key)
        report.pseudonym = pseudo
        ctx = _Ctx(self, table, report, pseudo, offset, free_text_pattern(ds), dv.text(ds, "SOPClassUID"))
        ctx.clean(ds, top=True)
        self._clean_meta(ds, report)
        self._mark(ds, pixels_cleaned=pixels_cleaned)
        return report

    def _clean_meta(self, ds: Dataset, report: DeidReport) -> None:
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            return
        for tag in _META_REMOVE:
            if tag in meta:
                del meta[tag]
                report.removed += 1
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        elif "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.new_uid(meta.MediaStorageSOPInstanceUID)
        if "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID

    def _mark(self, ds: Dataset, *, pixels_cleaned: bool) -> None:
        ds.PatientIdentityRemoved = "YES"
        codes = [CODE_BASIC_PROFILE]
        if pixels_cleaned:
            codes.append(CODE_CLEAN_PIXEL)
        if self.keep_dates:
            codes.append(CODE_MODIFIED_DATES)
        ds.DeidentificationMethod = method_text(pixels_cleaned=pixels_cleaned, keep_dates=self.keep_dates)
        items = []
        for value, meaning in codes:
            it = Dataset()
            it.CodeValue = value
            it.CodingSchemeDesignator = "DCM"
            it.CodeMeaning = meaning
            items.append(it)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if self.keep_dates else "REMOVED"
        if pixels_cleaned:
            ds.BurnedInAnnotation = "NO"


SCRUBBED = "[removed]"


def _encapsulated_top(ds: Dataset | None) -> bool:
    """*ds* is the top level of an Encapsulated Document instance (PDF, CDA, STL ...)."""
    return ds is not None and "SOPClassUID" in ds and "MIMETypeOfEncapsulatedDocument" in ds


#: a UID written into free text (4+ numeric components, not part of a longer token)
_UID_IN_TEXT = re.compile(r"(?<![\w.])[0-2](?:\.(?:0|[1-9]\d*)){3,}(?![\w.])")
#: a calendar date written into free text (YYYYMMDD, YYYY-MM-DD, DD/MM/YYYY, DD.MM.YYYY)
_DATE_IN_TEXT = re.compile(
    r"(?<![\w.])(?:(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"|(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|1[0-2])[/.](?:19|20)\d\d)(?![\w.])"
)
#: SR (and KOS) storage classes; their Content Date/Time are Type 1 (SR Document General module)
_TYPE1_IN_SR = frozenset({"ContentDate", "ContentTime"})
#: Type 2 in the SR / Key Object Document Series modules, X/Z/D in Table E.1-1: kept empty
_TYPE2_IN_SR = frozenset({"ReferencedPerformedProcedureStepSequence"})
#: Type 2 in the Encapsulated Document module, X/Z/D in Table E.1-1: kept empty (the IOD needs it present;
#: empty reveals nothing), so an exported PDF/CDA is as valid as its original (issue 11 item 9)
_TYPE2_IN_ENCAPSULATED = frozenset({"AcquisitionDateTime"})

#: SR concepts whose TEXT value names a person, organisation, device or place (DCM, TID 1002-1006)
IDENTIFYING_CONCEPTS = frozenset(
    {
        ("121008", "DCM"),  # Person Observer Name (PNAME, but some writers use TEXT)
        ("121009", "DCM"),  # Person Observer's Organization Name
        ("121012", "DCM"),  # Device Observer Manufacturer
        ("121013", "DCM"),  # Device Observer Model Name
        ("121014", "DCM"),  # Device Observer Serial Number
        ("121015", "DCM"),  # Device Observer Physical Location During Observation
        ("121017", "DCM"),  # Device Observer Physical Location
        ("121019", "DCM"),  # Device Observer Name
        ("121029", "DCM"),  # Subject Name
        ("121030", "DCM"),  # Subject ID
        ("121036", "DCM"),  # Mother of fetus
    }
)
#: the same, for private or unknown codes, by their meaning
_IDENTIFYING_MEANING = re.compile(
    r"organi[sz]ation|institution|hospital|observer'?s? name|person name|serial number|physical location|"
    r"station name|subject (name|id)|patient'?s? (name|id)|\baddress\b|telephone",
    re.IGNORECASE,
)


def identifying_concept(item: Dataset) -> bool:
    """True when an SR content item's concept says its value identifies someone or somewhere."""
    seq = dv.sequence(item, "ConceptNameCodeSequence")
    if not seq:
        return False
    code = seq[0]
    key = (dv.text(code, "CodeValue"), dv.text(code, "CodingSchemeDesignator"))
    if key in IDENTIFYING_CONCEPTS:
        return True
    return bool(_IDENTIFYING_MEANING.search(str(code.get("CodeMeaning", "") or "")))


_PLACEHOLDER_TEXT = "Document content removed by de-identification (DICOM PS3.15 Basic Profile)."


def placeholder_document(mime: str) -> bytes:
    """A valid stand-in for an encapsulated document whose content cannot be de-identified.

    The document's own bytes (a PDF's pages and metadata, a CDA's header)
    may name the patient anywhere; Table E.1-1 gives Encapsulated Document
    action D, so it is replaced by a one-page PDF (or a minimal XML / text
    file for other MIME types) that says so.  Even length, as OB needs.
    """
    mime = mime.strip().lower()
    if mime == "application/pdf" or not mime:
        from mdtviewer.infra.minipdf import one_page_pdf

        data = one_page_pdf([_PLACEHOLDER_TEXT])
    elif "xml" in mime:
        data = f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {_PLACEHOLDER_TEXT} -->\n<removed/>\n'.encode()
    else:
        data = (_PLACEHOLDER_TEXT + "\n").encode()
    return data + (b"\x00" if len(data) % 2 else b"")


_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})


def free_text_pattern(ds: Dataset) -> re.Pattern[str] | None:
    """A pattern matching this patient's identifiers as they may appear in free text.

    Name (as written, with carets or spaces, and each part of 4+ letters),
    patient IDs, accession number and birth date (DICOM and common written
    forms).  Whole words, case-insensitive.  Errs on the side of removing
    a word too many: a teaching file must not name its patient.
    """
    found: set[str] = set()

    def get(kw: str) -> list[str]:
        return [str(v) for v in dv.values(dv.get(ds, kw))]

    for name in get("PatientName") + get("OtherPatientNames") + get("PatientBirthName"):
        name = name.strip().strip("^")
        if not name:
            continue
        found.add(name)
        found.add(" ".join(p for p in name.replace("^", " ").split()))
        found.update(p for p in re.split(r"[\s^,]+", name) if len(p) >= 4 and not p.isdigit())
    for kw in ("PatientID", "OtherPatientIDs", "AccessionNumber", "MedicalRecordLocator"):
        found.update(v.strip() for v in get(kw) if len(v.strip()) >= 3)
    for bd in get("PatientBirthDate"):
        bd = bd.strip()
        if len(bd) == 8 and bd.isdigit():
            y, m, d = bd[:4], bd[4:6], bd[6:]
            found.update({bd, f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}", f"{m}/{d}/{y}", f"{y}/{m}/{d}"})
    found.discard("")
    if not found:
        return None
    alts = sorted(found, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a) for a in alts) + r")(?!\w)", re.IGNORECASE)


def method_text(*, pixels_cleaned: bool, keep_dates: bool) -> list[str]:
    """De-identification Method values (LO, one per option: each fits the 64-character limit)."""
    parts = [f"PS3.15 E.1-1 {basic_profile_table().edition} Basic Profile (mdtviewer)"]
    if pixels_cleaned:
        parts.append("Clean Pixel Data Option")
    if keep_dates:
        parts.append("Retain Longitudinal Modified Dates Option")
    return [p[:64] for p in parts]


# ---------------------------------------------------------------------------
@dataclass
class _Ctx:
    deid: Deidentifier
    table: ProfileTable
    report: DeidReport
    pseudo: str
    offset_days: int
    #: this patient's identifiers as they may be typed into free text
    scrub: re.Pattern[str] | None = None
    #: the instance's SOP Class UID (Z/D resolves to D where its IOD needs a value)
    sop_class: str = ""

    def clean(self, ds: Dataset, *, top: bool = False) -> None:
        for tag in list(ds.keys()):
            tag = Tag(tag)
            try:
                elem = ds[tag]
            except dv.BAD_VALUE:  # unparseable element: cannot vouch for it
                del ds[tag]
                self.report.unreadable_removed += 1
                continue
            if tag.is_private:
                del ds[tag]
                self.report.private_removed += 1
                continue
            if 0x6000 <= tag.group <= 0x601E and tag.group % 2 == 0:
                # overlay planes go whole (the table removes their data and comments;
                # what is left would describe an overlay that is not there)
                del ds[tag]
                self.report.removed += 1
                continue
            if tag.group == 0xFFFE or tag.element == 0x0000 or tag.group == 0x0002:
                del ds[tag]
                self.report.removed += 1
                continue
            if tag == 0x7FE00010:  # Pixel Data: cleaned by mdtviewer.imaging.masking
                continue
            kw = elem.keyword or keyword_for_tag(tag)
            action = self.table.action(tag)
            if top and kw == "PatientName":
                elem.value = self.pseudo.replace("-", "^", 1)  # MDTV^XXXXXXXX: family^given form
                self.report.replaced += 1
                continue
            if top and kw == "PatientID":
                elem.value = self.pseudo
                self.report.replaced += 1
                continue
            if kw == "PatientBirthDate":
                elem.value = ""
                self.report.emptied += 1
                continue
            if action is None:
                self._generic(ds, tag, elem, kw)
            else:
                self._apply(ds, tag, elem, kw, action)

    # elements the table does not list: still no PN, no dates, no instance UIDs
    def _generic(self, ds: Dataset, tag, elem, kw: str) -> None:
        vr = elem.VR
        if vr == "SQ":
            for item in elem.value or []:
                self.clean(item)
            return
        if vr == "PN":
            if elem.value not in (None, ""):
                elem.value = ""
                self.report.emptied += 1
            return
        if vr in ("DA", "DT"):
            if self.deid.keep_dates:
                self._shift(ds, tag, elem)
            else:
                del ds[tag]
                self.report.removed += 1
            return
        if vr == "UI":
            self._map_uids(elem, kw)
            return
        if kw == "TextValue" and elem.value and identifying_concept(ds):
            # an SR TEXT item whose concept is a person, organisation, device or place
            # (e.g. "Person Observer's Organization Name"): the value identifies, whatever it says
            elem.value = _DUMMY_TEXT
            self.report.replaced += 1
            return
        if vr in _TEXT_VRS and elem.value:
            # Free text the table keeps (e.g. an SR's Text Value) may carry the
            # patient's name or ID typed in, and machine text may carry UIDs and
            # dates: OsiriX writes name, ID, birth date and every UID of the study
            # into the TEXT items of its SRs.
            if isinstance(elem.value, str):
                new = self._scrub_text(elem.value)
                if new != elem.value:
                    elem.value = new
                    self.report.scrubbed += 1
            else:
                vals = [self._scrub_text(str(v)) for v in elem.value]
                if vals != [str(v) for v in elem.value]:
                    elem.value = vals
                    self.report.scrubbed += 1

    def _scrub_text(self, text: str) -> str:
        """The patient's identifiers removed, instance UIDs mapped as everywhere else, dates removed."""
        if self.scrub is not None:
            text = self.scrub.sub(SCRUBBED, text)

        def uid(m: re.Match[str]) -> str:
            u = m.group(0)
            return u if u in UID_dictionary else self.deid.new_uid(u)

        text = _UID_IN_TEXT.sub(uid, text)
        return _DATE_IN_TEXT.sub(SCRUBBED, text)

    def _apply(self, ds: Dataset, tag, elem, kw: str, action: str) -> None:
        vr = elem.VR
        if self.deid.keep_dates and int(tag) in KEPT_WITH_MODIFIED_DATES:
            return
        if vr in ("DA", "DT", "TM") and self.deid.keep_dates and action != "U" and int(tag) not in NOT_LONGITUDINAL:
            # Modified Dates option: dates shifted per patient, times of day kept
            if vr == "TM":
                return
            self._shift(ds, tag, elem)
            return
        if action == "U":
            if vr == "UI":
                self._map_uids(elem, kw, force=True)
            elif vr == "SQ":
                for item in elem.value or []:
                    self.clean(item)
            else:
                del ds[tag]
                self.report.removed += 1
            return
        if action == "X/Z/U*":
            if vr == "SQ":
                for item in elem.value or []:
                    self.clean(item)
            else:
                del ds[tag]
                self.report.removed += 1
            return
        if vr == "UI" and action in ("D", "Z", "Z/D"):
            self._map_uids(elem, kw, force=True)
            return
        if action in ("X/Z", "X/Z/D") and kw in _TYPE2_IN_SR and self._sr_top(ds):
            # X/Z means Z where the IOD needs the attribute present (Type 2): SR/KOS Document Series
            elem.value = Sequence([]) if vr == "SQ" else _empty(vr)
            self.report.emptied += 1
            return
        if action in ("X/D", "X/Z/D") and kw in _TYPE2_IN_ENCAPSULATED and _encapsulated_top(ds):
            elem.value = _empty(vr)
            self.report.emptied += 1
            return
        if action in ("X", "X/Z", "X/D", "X/Z/D"):
            del ds[tag]
            self.report.removed += 1
            return
        if action == "Z/D" and kw in _TYPE1_IN_SR and self._sr_top(ds):
            # Z/D means D where the IOD requires a value: SR Document General makes these Type 1
            elem.value = _dummy(vr)
            self.report.replaced += 1
            return
        if action in ("Z", "Z/D"):
            if vr == "SQ":
                elem.value = Sequence([])
            else:
                elem.value = _empty(vr)
            self.report.emptied += 1
            return
        if action == "D":
            if vr == "SQ":
                for item in elem.value or []:
                    self.clean(item)
                return
            if kw == "EncapsulatedDocument":
                # the PDF/CDA itself names the patient; D asks for a non-empty dummy, and
                # the Encapsulated Document module needs one (Type 1): a valid placeholder
                doc = placeholder_document(dv.text(ds, "MIMETypeOfEncapsulatedDocument"))
                elem.value = doc
                if "EncapsulatedDocumentLength" in ds:
                    ds.EncapsulatedDocumentLength = len(doc.rstrip(b"\x00")) if doc.startswith(b"%PDF") else len(doc)
                self.report.replaced += 1
                return
            elem.value = _dummy(vr)
            self.report.replaced += 1
            return
        # an action code we do not know: be safe
        del ds[tag]
        self.report.removed += 1

    def _sr_top(self, ds: Dataset | None) -> bool:
        """*ds* is the top level of an SR or KOS document (not one of its content items)."""
        return ds is not None and uids.is_sr_class(self.sop_class) and "SOPClassUID" in ds

    def _map_uids(self, elem, kw: str, *, force: bool = False) -> None:
        if elem.value in (None, "", b""):
            return
        if not force and (kw.endswith("ClassUID") or kw in _NON_INSTANCE_UI):
            return
        values = list(elem.value) if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        out = []
        changed = False
        for v in values:
            s = str(v).strip().rstrip("\x00")
            if not s or (not force and (s in UID_dictionary or kw.endswith("ClassUID") or kw in _NON_INSTANCE_UI)):
                # forced (the table says U, or D/Z on a UI): replaced whatever it is - e.g. Manufacturer's
                # Device Class UID (0018,100B) is U although its keyword ends in ClassUID (QA 9)
                out.append(s)
                continue
            out.append(self.deid.new_uid(s))
            changed = True
        if changed:
            elem.value = out if len(out) > 1 else out[0]
            self.report.uids_replaced += 1

    def _shift(self, ds: Dataset, tag, elem) -> None:
        values = elem.value
        if values in (None, ""):
            return
        seq = list(values) if isinstance(values, (list, pydicom.multival.MultiValue)) else [values]
        out = []
        for v in seq:
            s = _shift_value(str(v), elem.VR, self.offset_days)
            if s is None:
                del ds[tag]
                self.report.removed += 1
                return
            out.append(s)
        elem.value = out if len(out) > 1 else out[0]
        self.report.dates_shifted += 1


def _shift_value(value: str, vr: str, days: int) -> str | None:
    """Shift a DA or DT string by *days*; None if it is not a date we can read."""
    s = value.strip()
    if not s:
        return s
    if vr == "DA":
        digits = re.sub(r"[^0-9]", "", s)  # ACR-NEMA 'YYYY.MM.DD' too
        if len(digits) != 8:
            return None
        try:
            d = _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            return None
        return (d + _dt.timedelta(days=days)).strftime("%Y%m%d")
    # DT: YYYYMMDD[HHMMSS.FFFFFF][&ZZXX]; shift the date part, keep the rest
    m = re.match(r"^(\d{4})(\d{2})?(\d{2})?(.*)$", s)
    if not m:
        return None
    y, mo, dd, rest = m.group(1), m.group(2) or "01", m.group(3) or "01", m.group(4)
    try:
        new = _dt.date(int(y), int(mo), int(dd)) + _dt.timedelta(days=days)
    except ValueError:
        return None
    return new.strftime("%Y%m%d") + rest


def _empty(vr: str) -> Any:
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT"):
        return None
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b""
    return ""


def _dummy(vr: str) -> Any:
    if vr == "DA":
        return "19000101"
    if vr == "DT":
        return "19000101000000"
    if vr == "TM":
        return "000000"
    if vr in ("DS", "IS"):
        return "0"
    if vr == "AS":
        return "000Y"
    if vr == "PN":
        return "MDTV^REMOVED"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
        return 0
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        # D is a non-zero length value (PS3.15 Table E.1-1): eight zero bytes fit every binary VR's unit
        # (Frame Origin Timestamp, Flow/Source Identifier, Selector OB/UN Value, Certificate of Signer)
        return b"\x00" * 8
    if vr == "CS":
        return "REMOVED"
    if vr == "UR":
        return "urn:mdtv:removed"  # D asks for a non-empty value; an empty URI was Z, not D (QA 9)
    text = _DUMMY_TEXT
    return text[: _MAX_LEN.get(vr, len(text))]


def profile_keywords() -> list[str]:
    """Keywords of every exact tag the loaded table lists (for tests and docs)."""
    out = []
    for tag in basic_profile_table().exact:
        kw = keyword_for_tag(tag)
        out.append(kw or f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
    return sorted(out)


def listed_tags() -> Iterable[int]:
    return basic_profile_table().exact.keys()


def vr_of(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"
