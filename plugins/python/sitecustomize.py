# Loaded by every Python task of Muster's python task type (its directory is first on
# PYTHONPATH). It records the last lines of an uncaught exception's traceback in the file named
# by MUSTER_PYTHON_REPORT, so the agent can put them in the task's result message, then lets
# the normal hook print the traceback as usual. Any other sitecustomize on sys.path (a distro's)
# still runs after this one. Python 2.7 and 3.x.
import os
import sys


def _muster_install_hook():
    report = os.environ.get("MUSTER_PYTHON_REPORT")
    if not report:
        return
    previous = sys.excepthook

    def hook(etype, value, tb):
        try:
            import traceback
            lines = "".join(traceback.format_exception(etype, value, tb)).rstrip().splitlines()
            with open(report, "w") as f:
                f.write("\n".join(lines[-6:])[-2000:] + "\n")
        except Exception:
            pass
        previous(etype, value, tb)

    sys.excepthook = hook


def _muster_chain():
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        path = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    code = compile(f.read(), path, "exec")
                exec(code, {"__name__": "sitecustomize", "__file__": path})
            except Exception:
                pass
            return


_muster_install_hook()
_muster_chain()
