"""The kernel side of grading: what runs in a student's kernel, locally and inside the grading sandbox.

Test cells call `course_lib.grading.checks.exNN.check_*`, which run the student's code through a probe
(`probes`) and hand plain data to `channel`. Nothing in this package judges, holds a reference answer or a
label, or imports the host side: the sandbox's copy of course_lib has only this package, the teaching
modules and the shared `protocol` and `plain` modules.
"""
