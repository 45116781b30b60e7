"""The reviewer profile: who signs reviews on this computer account, set once, kept in settings.

Signing takes the signer from here (name, role, professional registration such
as HCPC or RCCP, organisation), never from a name typed into the form; the
operating-system account is recorded beside it in the audit trail.  Qt-free.

The window (Review › Reviewer profile…) and ``mdtviewer sr profile`` set it the
same way, through :func:`set_profile`: the same checks (:func:`problem`), the
same atomic save into the settings file, the same audit record
(``profile-set``: the computer account, the role and registration before and
after, which fields changed; never the name).  The role is declared by the
person, not looked up in a registry of trainers: the audit record is what makes
a change of role traceable (HAZ-030).
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import asdict, dataclass

from mdtviewer.infra.errors import MdtError
from mdtviewer.sr import model as m

log = logging.getLogger(__name__)

SECTION = "reviewer_profile"

#: how each role (sr.model.ROLES) reads in the window and in messages
ROLE_LABELS = {
    "reporting-scientist": "Reporting scientist",
    "second-reader": "Second reader",
    "trainee": "Trainee",
    "trainer": "Trainer (preceptor)",
}


@dataclass
class ReviewerProfile:
    name: str = ""
    role: str = "reporting-scientist"
    #: professional registration, e.g. "HCPC CS012345" or "RCCP 1234" (trainees may have none yet)
    registration: str = ""
    organization: str = ""

    def missing(self) -> list[str]:
        """What must still be filled in before this profile can sign ([] when complete)."""
        out = []
        if not self.name.strip():
            out.append("name")
        if self.role not in m.ROLES:
            out.append("role")
        if not self.organization.strip():
            out.append("organisation")
        if self.role != "trainee" and not self.registration.strip():
            out.append("professional registration")
        return out

    def verifier(self) -> m.Verifier:
        """The signer for a review signed now (validated as the SR needs it), in the profile's role."""
        return m.Verifier(self.name.strip(), self.organization.strip(), m.now_dt(),
                          registration=self.registration.strip(), role=self.role)

    def refusal(self, kind: str) -> str:
        """Why this profile may not sign a review of *kind* ('' when it may): see :func:`sign_refusal`."""
        return sign_refusal(kind, self.role)


#: the profile's fields, in the order the window and ``sr profile`` show them
FIELDS = ("name", "organization", "registration", "role")
#: how each field is named to the user
FIELD_LABELS = {"name": "name", "organization": "organisation", "registration": "professional registration",
                "role": "role"}


class ProfileError(MdtError, ValueError):
    """A reviewer profile that may not be saved (one-line reason); nothing was saved."""

    category = "profile"

    def __init__(self, reason: object = "", missing: list[str] | None = None):
        super().__init__(reason)
        #: the fields still needed (as :meth:`ReviewerProfile.missing` names them), [] for another problem
        self.missing = list(missing or [])


def problem(profile: ReviewerProfile) -> ProfileError | None:
    """Why *profile* may not be saved (None when it may): the one set of rules for the window and the CLI.

    Complete (:meth:`ReviewerProfile.missing`), printable text (a control or bidi character in a signer's
    name would make the signed record read differently from what was typed), no backslash (the DICOM
    value separator), and acceptable to the signed SR as it stands (:meth:`ReviewerProfile.verifier`).
    """
    missing = profile.missing()
    if missing:
        return ProfileError("still needed: " + ", ".join(missing), missing)
    from mdtviewer.pacs.safetext import printable

    for f in FIELDS:
        value = str(getattr(profile, f))
        if printable(value) != value:
            return ProfileError(f"the {FIELD_LABELS[f]} contains a control or formatting character "
                                f"({printable(value)!s})")
        if "\\" in value:
            return ProfileError(f"the {FIELD_LABELS[f]} must not contain a backslash")
    try:
        profile.verifier()  # the same checks as the signed SR
    except m.ReviewError as exc:
        return ProfileError(str(exc))
    return None


def updated(base: ReviewerProfile | None, **changes: str | None) -> ReviewerProfile:
    """*base* with the fields given in *changes* replaced (a None value keeps the field).

    Without a *base* (no profile yet) the role starts empty rather than at a default: a first
    profile states its role."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ProfileError(f"unknown profile field(s): {', '.join(sorted(unknown))}")
    start = asdict(base) if base is not None else {**asdict(ReviewerProfile()), "role": ""}
    start.update({k: v.strip() for k, v in changes.items() if v is not None})
    return ReviewerProfile(**start)


def set_profile(profile: ReviewerProfile, *, via: str) -> bool:
    """Check *profile* (:func:`problem`), save it atomically and record it in the audit trail.

    *via* says where it was set ("window", "command line").  Returns False when it equals the saved
    profile (nothing written, nothing audited).  Raises :class:`ProfileError` (nothing saved) or
    ``OSError`` (the settings file could not be written)."""
    bad = problem(profile)
    if bad is not None:
        raise bad
    clean = ReviewerProfile(**{k: v.strip() for k, v in asdict(profile).items()})
    before = load()
    if before == clean:
        return False
    save(clean)
    _audit_set(before, clean, via)
    return True


def _audit_set(before: ReviewerProfile | None, after: ReviewerProfile, via: str) -> None:
    """Audit trail: the profile was set.  The role and registration before and after and the computer
    account are recorded (who claimed which role, from which account); names are not (the audit trail
    keeps none: the signed SR carries the signer's name)."""
    from mdtviewer.infra import audit

    changed = [f for f in FIELDS if before is None or getattr(before, f) != getattr(after, f)]
    audit.record("profile-set", detail={
        "via": via,
        "os_account": os_account(),
        "role": after.role,
        "previous_role": before.role if before is not None else None,
        "registration": after.registration,
        "previous_registration": before.registration if before is not None else None,
        "changed": changed,
    })


#: the roles that may sign a preceptorship outcome (competent / needs supervision): the trainee's assessor
SIGN_PRECEPTORSHIP_ROLES = ("trainer",)


def sign_refusal(kind: str, role: str) -> str:
    """Why a signer in *role* may not sign a review of *kind* ('' when they may), in one line.

    A preceptorship records a trainee's competence: only a trainer (preceptor) signs it.  A second
    reader, a reporting scientist or the trainee may write and save it as a draft for a trainer to sign.
    """
    if kind == "preceptorship" and role not in SIGN_PRECEPTORSHIP_ROLES:
        return (f"a preceptorship outcome is signed only by a {ROLE_LABELS['trainer']}; this account's reviewer "
                f"profile role is {ROLE_LABELS.get(role, role)!s} (save it as a draft for a trainer to sign)")
    return ""


def self_sign_off(trainee: str, signer: str) -> str:
    """Why *signer* may not sign off the preceptorship of *trainee* ('' when they may), in one line.

    The trainer role is self-declared in the profile (no register of trainers): a trainee who declares
    themselves a trainer must still not sign off their own competence.  Names compare as people do
    ("Ada Okafor" and "Okafor^Ada" are the same person), and a name that is the other with a middle name,
    initial or suffix added ("Lee^Ann" and "Lee^Ann^M") counts as the same person: refusing a trainer who
    shares a trainee's family and given names costs a second signer, signing one's own competence costs
    the logbook its meaning.
    """
    from mdtviewer.sr.model import person_key

    a = {t.strip(".") for t in person_key(trainee)} - {""}
    b = {t.strip(".") for t in person_key(signer)} - {""}
    small, big = sorted((a, b), key=len)
    if small and (small == big or (len(small) >= 2 and small <= big)):
        return ("a trainee does not sign off their own preceptorship: the signer's name is the name of the "
                "trainee it assesses (save it as a draft for their trainer to sign)")
    return ""


def load() -> ReviewerProfile | None:
    """The profile of this account, None when none was set (or the settings cannot be read)."""
    from mdtviewer.infra import settings

    try:
        d = settings.get_section(SECTION)
    except (OSError, ValueError) as exc:
        log.warning("reviewer profile unreadable: %s", exc)
        return None
    if not isinstance(d, dict):
        return None
    return ReviewerProfile(**{k: str(d.get(k, "") or "") for k in ("name", "role", "registration", "organization")})


def save(profile: ReviewerProfile) -> None:
    from mdtviewer.infra import settings

    settings.set_section(SECTION, {k: v.strip() for k, v in asdict(profile).items()})


def os_account() -> str:
    """The operating-system account signing (recorded in the audit trail, whatever the settings say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
