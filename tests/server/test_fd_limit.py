"""The broker raises its soft open-file limit to the hard limit."""

from __future__ import annotations

from tests.helpers import run_python

_CHILD = """
import resource, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
from odradek.server.fd_limit import raise_open_file_limit
now = raise_open_file_limit()
soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
print(now, soft, hard)
"""


def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    """A process started with a soft limit of 256 ends with soft == hard, and the function
    reports the limit now in force (run in a child so this process keeps its limit)."""
    now, soft, hard = (int(x) for x in run_python(_CHILD).split())
    assert hard > 256, "the test needs a hard limit above 256"
    assert soft == hard == now


def test_a_soft_limit_already_at_the_hard_limit_is_left_alone() -> None:
    """Nothing changes (and nothing fails) when there is no room to raise: a child with
    soft == hard == 512 keeps 512."""
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))\n"
        "from odradek.server.fd_limit import raise_open_file_limit\n"
        "print(raise_open_file_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    assert run_python(code).split() == ["512", "512", "512"]
