"""The review editor (second opinion, preceptorship, sign-off) and the training views."""
