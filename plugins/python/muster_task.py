"""muster_task: talk to the Muster agent from a Python task.

Shipped with the python task type and put on PYTHONPATH for every Python task, so a task just
does ``import muster_task``. It speaks the agent's control channel (docs/plugins.md): lines
written to the file descriptor named by MUSTER_CONTROL (3). Pure Python, 2.7 and 3.x.

    import muster_task
    muster_task.progress(40, "loaded the input")
    muster_task.set_param("rows", 1234)        # visible to later tasks as ${this-task.rows}
    muster_task.params()                      # {"earlier-task.key": "value", ...}
"""
import json
import os

__all__ = ["progress", "set_param", "params", "param", "context"]

_MAX_LINE = 4096


def _fd():
    value = os.environ.get("MUSTER_CONTROL")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _send(line):
    if "\n" in line or "\r" in line:
        raise ValueError("muster_task: a control line cannot contain a newline")
    data = (line + "\n").encode("utf-8")
    if len(data) > _MAX_LINE:
        raise ValueError("muster_task: control line longer than %d bytes" % _MAX_LINE)
    fd = _fd()
    if fd is None:
        return False  # not under Muster: a no-op, so scripts also run by hand
    while data:
        written = os.write(fd, data)
        data = data[written:]
    return True


def progress(percent, message=None):
    """Reports progress: percent in [0, 100] (clamped by the agent), an optional message."""
    percent = float(percent)
    line = "progress %g" % percent
    if message:
        line += " " + " ".join(str(message).split())
    return _send(line)


def set_param(key, value):
    """Sets an output param. Keys are [A-Za-z0-9_.-], at most 128 bytes; values one line."""
    key = str(key)
    if not key or len(key) > 128 or any(not (c.isalnum() or c in "_.-") for c in key):
        raise ValueError("muster_task: bad param key %r" % key)
    return _send("param %s=%s" % (key, value))


def params():
    """Output params of earlier tasks on this host, as {"task.key": "value"}.

    Read from MUSTER_PARAMS (a JSON object with the exact keys) when the agent set it, else from
    the MUSTER_PARAM_<TASK>_<KEY> variables (upper-cased, other characters as "_")."""
    raw = os.environ.get("MUSTER_PARAMS")
    if raw:
        try:
            value = json.loads(raw)
            if isinstance(value, dict):
                return dict((str(k), str(v)) for k, v in value.items())
        except ValueError:
            pass
    out = {}
    for name, value in os.environ.items():
        if name.startswith("MUSTER_PARAM_"):
            out[name[len("MUSTER_PARAM_"):]] = value
    return out


def param(key, default=None):
    """One earlier param by its "task.key" name (or its MUSTER_PARAM_ suffix)."""
    return params().get(key, default)


def context():
    """The task's identity: job_id, task_id, attempt, agent_id, task_dir."""
    env = os.environ
    return {
        "job_id": env.get("MUSTER_JOB_ID"),
        "task_id": env.get("MUSTER_TASK_ID"),
        "attempt": int(env.get("MUSTER_ATTEMPT", "0") or 0),
        "agent_id": env.get("MUSTER_AGENT_ID"),
        "task_dir": env.get("MUSTER_TASK_DIR"),
    }
