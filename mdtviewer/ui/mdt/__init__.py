"""MDT presenter mode: cases in order, each with the patient's other imaging."""
