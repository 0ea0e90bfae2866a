"""Per-assignment checks that the exercises' test cells call (one module per assignment).

Each check takes the student's function and a seed; the visible tests use seeds printed in the student's
notebook, the hidden tests use seeds that appear only in the instructor's source (solutions/).
"""
