#!/usr/bin/env python3
"""Fake JSON-lines captioner for tests/data/test_captioners.c (standard library only).

Reads one JSON request per line on stdin and misbehaves on purpose, chosen by the
request id's prefix (the part before the first '-'):
  ok        {"id", "text", "echo": <the request>}   (echo lets the test check what was sent)
  error     {"id", "error": "model refused"}
  garbage   a line that is not JSON
  wrongid   a reply for another id
  notext    {"id"} only
  long      a 2 MB text line (over the test's line limit)
  sleep     sleeps 20 s before answering (past the test's timeout; bounded so
            that nothing outlives the test for long even if a kill were missed)
  exit      writes half a line, then exits with status 3
  crashonce exits with status 4 the first time this id is seen (a marker file in
            --state DIR), answers normally afterwards
  blank     a blank line, then a normal answer (blank lines are tolerated)
--mode MODE applies MODE to every request whatever its id (test_build_encoders
uses --mode ok: "caption of <id>" for every sample).
Every start appends "<pid>" to DIR/starts; every request logs to stderr.
Exits on end of stdin.
"""
import json
import os
import sys
import time


def main():
    state = None
    forced = None
    args = sys.argv[1:]
    while len(args) >= 2:
        if args[0] == "--state":
            state = args[1]
        elif args[0] == "--mode":
            forced = args[1]
        args = args[2:]
    if state:
        with open(os.path.join(state, "starts"), "a") as f:
            f.write("%d\n" % os.getpid())
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        rid = req["id"]
        mode = forced or rid.split("-", 1)[0]
        sys.stderr.write("fake_captioner: request %s\n" % rid)
        sys.stderr.flush()
        if mode == "ok" or mode == "blank":
            if mode == "blank":
                out.write("\n")
            out.write(json.dumps({"id": rid, "text": "caption of " + rid, "echo": req}) + "\n")
        elif mode == "error":
            out.write(json.dumps({"id": rid, "error": "model refused"}) + "\n")
        elif mode == "garbage":
            out.write("this is not json\n")
        elif mode == "wrongid":
            out.write(json.dumps({"id": "someone-else", "text": "x"}) + "\n")
        elif mode == "notext":
            out.write(json.dumps({"id": rid}) + "\n")
        elif mode == "long":
            out.write(json.dumps({"id": rid, "text": "x" * 2000000}) + "\n")
        elif mode == "sleep":
            out.flush()
            time.sleep(20)
            out.write(json.dumps({"id": rid, "text": "late"}) + "\n")
        elif mode == "exit":
            out.write('{"id": "' + rid)
            out.flush()
            os._exit(3)
        elif mode == "crashonce":
            marker = os.path.join(state, "seen-" + rid)
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(4)
            out.write(json.dumps({"id": rid, "text": "recovered " + rid}) + "\n")
        else:
            out.write(json.dumps({"id": rid, "error": "unknown mode " + mode}) + "\n")
        out.flush()
    sys.stderr.write("fake_captioner: end of input\n")


if __name__ == "__main__":
    main()
