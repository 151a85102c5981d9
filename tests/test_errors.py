"""errors.one_line: the one wording of an error that the CLI, batches and Ray tasks share."""

import errno

from painterly.errors import one_line


def test_os_error_reads_as_path_and_reason():
    e = FileNotFoundError(errno.ENOENT, "No such file or directory", "photos/cat.jpg")
    assert one_line(e) == "photos/cat.jpg: No such file or directory"  # not "[Errno 2] ..."
    assert one_line(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"


def test_any_error_is_one_line():
    assert one_line(ValueError("first line\n\n   second line  \n")) == "first line second line"
    assert one_line(RuntimeError()) == "RuntimeError"  # no message: its type, never an empty line
