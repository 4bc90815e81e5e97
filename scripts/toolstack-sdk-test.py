#!/usr/bin/env python3
"""Drives toolstackd with the public XenAPI SDK from PyPI (`pip install xenapi`): over the
local unix socket (UDSTransport, root trusted) and over TCP (password checked): SRs, VDIs,
VBDs, tasks and events. Prints one line per check and 'N passed, M failed' at the end."""
import sys
import time
import XenAPI

socket_path, port, password, sr_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
passed = failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + str(detail) if detail else ""))


def failure_of(fn, *args):
    try:
        fn(*args)
    except XenAPI.Failure as e:
        return e.details
    return None


# TCP is HTTPS (a self-signed certificate made at first start); the password is checked.
tcp = XenAPI.Session("https://127.0.0.1:%d" % port, ignore_ssl=True)
details = failure_of(tcp.xenapi.login_with_password, "root", "wrong", "1.0", "sdk-test")
check("TCP login with a wrong password fails", details and details[0] == "SESSION_AUTHENTICATION_FAILED", details)
tcp.xenapi.login_with_password("root", password, "1.0", "sdk-test")
check("TLS login with the password", tcp._session.startswith("OpaqueRef:"))
check("API version through pool master", tcp._get_api_version() == "2.21", tcp._get_api_version())
tcp.xenapi.session.logout()

# The local socket: root with any password, as xapi's.
s = XenAPI.Session("http://" + socket_path.replace("/", "_"), transport=XenAPI.UDSTransport())
s.xenapi.login_with_password("root", "", "1.0", "sdk-test")
x = s.xenapi
host = x.host.get_all()[0]
check("SM records for the installed plugins (ext, nfs)", sorted(r["type"] for r in x.SM.get_all_records().values()) == ["ext", "nfs"])

sr = x.SR.create(host, {"path": sr_dir}, "0", "sdk-sr", "", "ext", "user", False, {})
rec = x.SR.get_record(sr)
check("SR.create plugs the SR", x.PBD.get_currently_attached(rec["PBDs"][0]) is True)
check("SR sizes came from the plugin's callbacks", int(rec["physical_size"]) > 0, rec["physical_size"])

vdi = x.VDI.create({"SR": sr, "virtual_size": str(32 << 20), "name_label": "sdk-disk", "type": "user",
                    "sharable": False, "read_only": False, "other_config": {}})
check("VDI.create", x.VDI.get_virtual_size(vdi) == str(32 << 20))
check("VDI in SR.VDIs", vdi in x.SR.get_VDIs(sr))

# Async with a task, waited for through event.from.
event_from = getattr(x.event, "from")
token = event_from(["task"], "", 0.0)["token"]
task = x.Async.VDI.snapshot(vdi, {})
status = "pending"
deadline = time.time() + 60
while status == "pending" and time.time() < deadline:
    batch = event_from(["task"], token, 5.0)
    token = batch["token"]
    for ev in batch["events"]:
        if ev["ref"] == task:
            status = ev["snapshot"]["status"]
check("Async.VDI.snapshot succeeds (seen through event.from)", status == "success", status)
snap = x.task.get_result(task).replace("<value>", "").replace("</value>", "")
check("the task's result is the snapshot", x.VDI.get_is_a_snapshot(snap) is True and x.VDI.get_snapshot_of(snap) == vdi)
x.task.destroy(task)

# VDI.get_nbd_info as backup tools use it: nothing until a network is NBD-enabled, then records
# naming an NBD-over-TLS server that nbdinfo (libnbd) reaches with the certificate given.
check("get_nbd_info is empty without an NBD network", x.VDI.get_nbd_info(snap) == [])
net = x.PIF.get_network(x.PIF.get_all()[0])
x.network.add_purpose(net, "nbd")
infos = x.VDI.get_nbd_info(snap)
check("get_nbd_info records", len(infos) == 1 and set(infos[0]) == {"exportname", "address", "port", "cert", "subject"}
      and infos[0]["exportname"] == "/%s?session_id=%s" % (x.VDI.get_uuid(snap), s._session)
      and "PRIVATE KEY" not in infos[0]["cert"], infos)
if infos:
    import os, subprocess, tempfile, urllib.parse
    certs = tempfile.mkdtemp()
    with open(os.path.join(certs, "ca-cert.pem"), "w") as f:
        f.write(infos[0]["cert"])
    uri = "nbds://%s:%s/%s?tls-certificates=%s" % (infos[0]["address"], infos[0]["port"],
                                                   urllib.parse.quote(infos[0]["exportname"], safe=""), certs)
    size = subprocess.run(["nbdinfo", "--size", uri], capture_output=True, text=True)
    check("nbdinfo over TLS reads the snapshot's size", size.stdout.strip() == str(32 << 20), size.stderr)
x.network.remove_purpose(net, "nbd")

clone = x.VDI.clone(snap, {})
check("VDI.clone", x.VDI.get_is_a_snapshot(clone) is False)

dom0 = [vm for vm, r in x.VM.get_all_records().items() if r["is_control_domain"]][0]
vbd = x.VBD.create({"VM": dom0, "VDI": vdi, "userdevice": "0", "bootable": False, "mode": "RW", "type": "Disk",
                    "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                    "qos_algorithm_params": {}})
x.VBD.plug(vbd)
check("VBD.plug attaches and activates", x.VBD.get_currently_attached(vbd) is True
      and x.VBD.get_runtime_properties(vbd).get("params_nbd", "").startswith("nbd:unix:"))
details = failure_of(x.VDI.destroy, vdi)
check("VDI.destroy of a plugged VDI: VDI_IN_USE", details == ["VDI_IN_USE", vdi, "destroy"], details)
x.VBD.unplug(vbd)
x.VBD.destroy(vbd)

details = failure_of(x.VDI.get_record, "OpaqueRef:not-there")
check("HANDLE_INVALID", details == ["HANDLE_INVALID", "VDI", "OpaqueRef:not-there"], details)
for v in (clone, snap, vdi):
    x.VDI.destroy(v)
pbd = x.SR.get_PBDs(sr)[0]
x.PBD.unplug(pbd)
x.SR.destroy(sr)
check("SR.destroy removes its records", x.SR.get_all() == [] and x.PBD.get_all() == [])
x.session.logout()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
