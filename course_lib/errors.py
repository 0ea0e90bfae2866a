"""The one base of every error a user of the `course` command should read as a sentence, not a traceback.

A module raises its own subclass (IntakeError, SiteError, ...; each also keeps the built-in base it had, so
callers that catch ValueError or RuntimeError still do). The CLI catches CourseError once and prints its
message as one line starting with "Error:". Anything else that escapes is a bug and keeps its traceback.
"""


class CourseError(Exception):
    """A failure the user can act on (a bad source, a missing tool, an unreachable server): its message says
    what went wrong and what to do, in one line."""
