"""Review › Reviewer profile…: who signs reviews on this account (set once, kept in settings)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.sr import model as m
from mdtviewer.workflows import reviewer_profile
from mdtviewer.workflows.review_form import ROLE_LABELS
from mdtviewer.workflows.reviewer_profile import ReviewerProfile


class ReviewerProfileDialog(QDialog):
    """Name, role, professional registration and organisation of the person signing on this account."""

    def __init__(self, parent: QWidget | None = None, profile: ReviewerProfile | None = None):
        super().__init__(parent)
        self.setObjectName("reviewerProfileDialog")
        self.setWindowTitle("Reviewer profile")
        p = profile or reviewer_profile.load() or ReviewerProfile()
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Reviews you sign carry this name, role, registration and organisation as the signer. "
            f"Your computer account ({reviewer_profile.os_account()}) is recorded beside it in the audit trail.",
            self,
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.name = QLineEdit(p.name, self)
        self.name.setObjectName("profileName")
        form.addRow("Name", self.name)
        self.role = QComboBox(self)
        self.role.setObjectName("profileRole")
        for r in m.ROLES:
            self.role.addItem(ROLE_LABELS[r], r)
        self.role.setCurrentIndex(max(0, self.role.findData(p.role)))
        form.addRow("Role", self.role)
        self.registration = QLineEdit(p.registration, self)
        self.registration.setObjectName("profileRegistration")
        self.registration.setPlaceholderText("e.g. HCPC CS012345 or RCCP 1234")
        form.addRow("Professional registration", self.registration)
        self.organization = QLineEdit(p.organization, self)
        self.organization.setObjectName("profileOrganisation")
        form.addRow("Organisation", self.organization)
        lay.addLayout(form)
        self.problem = QLabel("", self)
        self.problem.setObjectName("profileProblem")
        self.problem.setStyleSheet("color:#a00")
        self.problem.setWordWrap(True)
        lay.addWidget(self.problem)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

    def profile(self) -> ReviewerProfile:
        return ReviewerProfile(
            name=self.name.text().strip(),
            role=str(self.role.currentData()),
            registration=self.registration.text().strip(),
            organization=self.organization.text().strip(),
        )

    def accept(self) -> None:
        """Save through the workflow (the same checks, atomic save and audit record as `mdtviewer sr profile`)."""
        try:
            reviewer_profile.set_profile(self.profile(), via="window")
        except reviewer_profile.ProfileError as exc:
            self.problem.setText(exc.reason[:1].upper() + exc.reason[1:] + ".")
            return
        except OSError as exc:
            self.problem.setText(f"Not saved: {exc}")
            return
        super().accept()
