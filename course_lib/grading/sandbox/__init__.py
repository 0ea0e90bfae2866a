"""HOST SIDE: the sandbox a submission runs in, and the host's end of its cells.

bubblewrap.py (the bubblewrap command: allow-listed file system, no network, caps; `Monitor` measures the
whole process tree from /proc), slots.py (machine-wide sandbox slots), library.py (the copy of course_lib a
sandbox sees: the kernel side and teaching modules without the names an assignment asks for), session.py
(drives one notebook through a sandbox cell by cell: `run_in_sandbox`). The runner inside the sandbox is
course_lib.grading.kernel.executor; it imports nothing from here.
"""
