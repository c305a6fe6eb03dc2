"""The one rule for "did not wait" assertions, so that they hold on a busy CI machine.

A test that checks a step failed fast (a refused connection, a breaker, a request with no throttle delay) tells
two outcomes apart: answering at once, and waiting for some known wait (a timeout, a delay). A fixed bound such as
half a second is a guess about the machine; the bound here is a share of the wait the step must not have taken, so
it is as far from a busy machine's slow answer as it can be while still catching the wait.
"""

from __future__ import annotations

__all__ = ["NO_WAIT_SHARE", "did_not_wait"]

#: An answer counts as "at once" below this share of the wait it is told apart from.
NO_WAIT_SHARE = 0.75


def did_not_wait(elapsed: float, wait: float) -> bool:
    """Whether ``elapsed`` seconds is clearly less than ``wait`` seconds (the timeout or delay not waited for)."""
    return elapsed < NO_WAIT_SHARE * wait
