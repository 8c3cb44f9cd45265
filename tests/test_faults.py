"""The fault-injection harness (tests/faults.py) in CI: every file-system call site of a
build and a query, failed in turn with EACCES, ENOSPC, EIO, EROFS and ENOENT."""

from __future__ import annotations

import re
from pathlib import Path

from tests import faults

DOCS = Path(__file__).resolve().parent.parent / "docs" / "robustness.md"
#: A run's sites vary by one or two with thread timing (a query opens the index on a
#: second thread while it checks the corpus).
SLACK = 3


def test_every_injected_fault_ends_in_a_typed_error_or_a_correct_answer(tmp_path: Path):
    """Each case: a one-line typed error or a correct answer (or one with a warning), the
    index sound after it, and a clean run after it equal to a build from scratch;
    check_case raises on the first case that is not. The counts in docs/robustness.md are
    this harness's."""
    done = faults.run_all(tmp_path)
    documented = {
        name: int(sites)
        for name, sites in re.findall(r"^\| ([a-z ]+) \| (\d+) \| \d+ \|", DOCS.read_text(), re.M)
    }
    assert len(done) == 3 and set(documented) == {s.name for s, _ in done}
    for scenario, reached in done:
        assert abs(len(reached) - documented[scenario.name]) <= SLACK, (scenario.name, reached)
        assert sum(scenario.outcomes.values()) == len(reached) * len(faults.ERRNOS)
        # The harness reaches what it claims: most faults fire and many end as errors.
        assert scenario.outcomes["not reached"] < len(reached)
        assert sum(n for o, n in scenario.outcomes.items() if o.startswith("error")) > 20
