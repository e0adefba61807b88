#!/usr/bin/python3
"""An emulator of Flink's SQL client (`sql-client.sh -f script.sql`, docs/content/docs/dev/table/
sqlClient.md) for Muster's Flink tests: it reads the script, and for its INSERT statement submits
one job to the cluster named by -Drest.address (through the JobManager emulator's
/emulator/submit), printing the client's lines ("[INFO] SQL update statement has been
successfully submitted to the cluster:" / "Job ID: <id>"). The job's behaviour comes from a
comment line in the script: "-- class <name> batch|streaming ..." as in a test jar.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request
import uuid


def main():
    conf, script, i, argv = {}, None, 0, sys.argv[1:]
    while i < len(argv):
        a = argv[i]
        if a.startswith("-D"):
            k, _, v = a[2:].partition("=")
            conf[k] = v
        elif a in ("-f", "--file"):
            script = argv[i + 1]
            i += 1
        i += 1
    if script is None:
        print("[ERROR] interactive mode is not emulated; use -f", file=sys.stderr)
        return 1
    text = open(script).read()
    if not re.search(r"(?im)^\s*INSERT\s+INTO", text):
        print("[INFO] Execute statement succeed.")
        return 0
    m = re.search(r"--\s*class\s+(\S+)\s+(batch|streaming)(.*)", text)
    jid = conf.get("$internal.pipeline.job-id") or uuid.uuid4().hex
    body = {"jar": os.path.basename(script), "text": m.group(0).lstrip("- ").strip() if m else "",
            "entryClass": m.group(1) if m else None, "jobId": jid,
            "savepointPath": conf.get("execution.savepoint.path")}
    addr = conf.get("rest.address")
    req = urllib.request.Request("http://%s/emulator/submit" % addr, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            jid = json.loads(r.read())["jobid"]
    except (urllib.error.URLError, OSError) as e:
        print("[ERROR] Could not execute SQL statement. Reason:\n%s" % e, file=sys.stderr)
        return 1
    print("[INFO] Submitting SQL update statement to the cluster...")
    print("[INFO] SQL update statement has been successfully submitted to the cluster:")
    print("Job ID: %s" % jid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
