"""A simpleflow workflow for the end-to-end suite (test_simpleflow.py): one activity that runs
long enough for simpleflow's worker to heartbeat it through the proxy, then a second that uses
its result."""

import time

from simpleflow import Workflow, activity


@activity.with_attributes(task_list="e2e-simpleflow", version="e2e", heartbeat_timeout="60",
                          start_to_close_timeout="120", schedule_to_start_timeout="120",
                          schedule_to_close_timeout="240")
def slow_increment(x):
    # simpleflow's worker heartbeats every --heartbeat seconds while this runs.
    time.sleep(3)
    return x + 1


@activity.with_attributes(task_list="e2e-simpleflow", version="e2e", start_to_close_timeout="60",
                          schedule_to_start_timeout="120", schedule_to_close_timeout="180")
def double(x):
    return x * 2


class IncrementThenDouble(Workflow):
    name = "e2e-increment-then-double"
    version = "e2e"
    task_list = "e2e-simpleflow"
    execution_timeout = 600
    decision_tasks_timeout = "60"

    def run(self, x):
        y = self.submit(slow_increment, x)
        z = self.submit(double, y.result)
        return z.result
