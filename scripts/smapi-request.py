#!/usr/bin/env python3
"""Helpers for scripts/quickstart-sm.sh: build SMAPIv1 methodCall documents as xapi does,
print a methodResponse compactly, pull the uuid out of one, and draw the VHD tree."""
import json, sys, xmlrpc.client

def request(command, sr, srdir, extra):
    """srdir: the SR's directory (device-config:path), or a block device (device-config:device)."""
    where = {"device": srdir} if srdir.startswith("/dev/") else {"path": srdir}
    d = {"host_ref": "OpaqueRef:quickstart-host", "command": command, "args": [],
         "device_config": {"SRmaster": "true", **where}, "sr_ref": "OpaqueRef:quickstart-sr",
         "sr_uuid": sr}
    d.update(json.loads(extra))
    # As xapi sends it: one line, no XML declaration.
    return xmlrpc.client.dumps((d,), command).replace("\n", "").replace("<?xml version='1.0'?>", "")

def show(doc):
    try:
        (value,), _ = xmlrpc.client.loads(doc, use_builtin_types=True)
        print("  ->", "nil" if value is None else json.dumps(value))
    except xmlrpc.client.Fault as f:
        print("  -> FAULT", f.faultCode, f.faultString)

def uuid_of(doc):
    (value,), _ = xmlrpc.client.loads(doc)
    print(value["uuid"])

def tree(pairs):
    """pairs: "label=uuid" for the VDIs to name in the drawing."""
    labels = {uuid: label for label, uuid in (p.rsplit("=", 1) for p in pairs)}
    for line in sys.stdin:
        indent = len(line) - len(line.lstrip(" "))
        fields = dict(f.split("=", 1) for f in line.split())
        name = fields["vhd"].rsplit("/", 1)[-1][:-4]
        depth = indent // 3
        role = labels.get(name, "base copy (hidden)" if fields["hidden"] == "1" else "")
        print("   " * depth + ("└─ " if depth else "") + name, f"[{role}]" if role else "",
              f"{int(fields['capacity']) >> 20} MiB virtual, {int(fields['size'])} bytes")

if __name__ == "__main__":
    if sys.argv[1] == "--show": show(sys.argv[2])
    elif sys.argv[1] == "--uuid": uuid_of(sys.argv[2])
    elif sys.argv[1] == "--tree": tree(sys.argv[2:])
    else: print(request(*sys.argv[1:5]))
