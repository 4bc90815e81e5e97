#!/usr/bin/env python3
"""VDI.copy, VDI.pool_migrate and VDI export/import end to end, against a toolstackd of its own (started,
SIGKILLed and restarted here) with the real EXT and NFS plugins: full copies EXT->EXT and
EXT->NFS, a delta copy against a snapshot, VDI_TOO_SMALL and the read-only refusal, a cancel
midway, a daemon killed midway, and xe vdi-copy; then /export_raw_vdi and /import_raw_vdi (raw,
VHD, a VHD of the differences against a base) through HTTP and xe vdi-export/vdi-import, the
VHDs checked by our vhd tool and qemu-img, bad uploads refused with the VDI unchanged, and a
daemon killed mid-export. Data is written and read back through the data path's NBD export
(python3-libnbd) on a VBD of the control domain; contents are compared by SHA-256.
Usage: toolstack-copy-test.py TOOLSTACKD XE SMDIR ROOT [NFS host:port:mountport:export] [VHD]
Prints one line per check and 'N passed, M failed'."""
import contextlib
import glob
import hashlib
import http.client
import socket
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import nbd
except ImportError:   # Debian's python3-libnbd, under another python3 of the same version
    sys.path.append("/usr/lib/python3/dist-packages")
    import nbd
import XenAPI

toolstackd, xe, sm_dir, root = sys.argv[1:5]
nfs = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
vhd_tool = sys.argv[6] if len(sys.argv) > 6 else None
passed = failed = 0
MiB = 1 << 20
BLOCK = 2 * MiB


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print("ok   " + name, flush=True)
    else:
        failed += 1
        print("FAIL " + name + (": " + str(detail) if detail else ""), flush=True)


sock = root + "/sock/xapi"
# Data path socket paths must stay under 108 bytes: a short run directory of its own.
run_dir = tempfile.mkdtemp(prefix="cr", dir="/tmp")
log = open(root + "/toolstackd.log", "a")
daemon = None
# The host plugins (datapath-mirror, for live migrations) are smdriver too.
plugin_dir = root + "/plugins"
os.makedirs(plugin_dir, exist_ok=True)
if not os.path.exists(plugin_dir + "/datapath-mirror"):
    os.symlink(os.path.realpath(sm_dir + "/EXTSR"), plugin_dir + "/datapath-mirror")


def start(**extra_env):
    global daemon
    env = dict(os.environ, SWIFTSM_GC_AUTOSTART="0", SWIFTSM_TEST_COPY_CHUNK_DELAY_MS="30", **extra_env)
    mark = os.path.getsize(root + "/toolstackd.log") if os.path.exists(root + "/toolstackd.log") else 0
    daemon = subprocess.Popen([toolstackd, "--state-dir", root + "/st", "--socket", sock, "--sm-dir", sm_dir,
                               "--plugin-dir", plugin_dir, "--run-dir", run_dir], stdout=subprocess.DEVNULL, stderr=log, env=env)
    for _ in range(300):
        with open(root + "/toolstackd.log") as f:
            f.seek(mark)
            if "toolstackd ready" in f.read():
                break
        time.sleep(0.1)
    s = XenAPI.Session("http://" + sock.replace("/", "_"), transport=XenAPI.UDSTransport())
    s.xenapi.login_with_password("root", "", "1.0", "copy-test")
    global session_ref
    session_ref = s._session
    return s.xenapi


def failure_of(fn, *args):
    try:
        fn(*args)
    except XenAPI.Failure as e:
        return e.details
    return None


def xe_(*args):
    r = subprocess.run([xe] + list(args), env=dict(os.environ, XE_SOCKET=sock), capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def stop_daemon():
    if daemon and daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    shutil.rmtree(run_dir, ignore_errors=True)


import atexit
atexit.register(stop_daemon)
x = start()
dom0 = [v for v in x.VM.get_all() if x.VM.get_is_control_domain(v)][0]
os.makedirs(root + "/ext1", exist_ok=True)
os.makedirs(root + "/ext2", exist_ok=True)
host = x.host.get_all()[0]
ext1 = x.SR.create(host, {"path": root + "/ext1"}, "0", "copy-src", "", "ext", "user", False, {})
ext2 = x.SR.create(host, {"path": root + "/ext2"}, "0", "copy-dst", "", "ext", "user", False, {})
nfs_sr = None
if nfs:
    nhost, nport, nmport, nexport = nfs.split(":")
    os.makedirs(nexport + "/copy", exist_ok=True)
    nfs_sr = x.SR.create(host, {"server": nhost, "serverpath": nexport + "/copy",
                                "options": "port=%s,mountport=%s" % (nport, nmport)}, "0", "copy-nfs", "", "nfs", "user", True, {})


class Plugged:
    """A VBD of the control domain on `vdi` for the duration of a `with`: its NBD connection."""

    def __init__(self, vdi, mode):
        self.vdi, self.mode = vdi, mode

    def __enter__(self):
        self.vbd = x.VBD.create({"VM": dom0, "VDI": self.vdi, "userdevice": "autodetect", "bootable": False,
                                 "mode": self.mode, "type": "Disk", "unpluggable": True, "empty": False,
                                 "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
        x.VBD.plug(self.vbd)
        address = x.VBD.get_runtime_properties(self.vbd)["params_nbd"]
        socket_path, export = address[len("nbd:unix:"):].split(":exportname=")
        self.h = nbd.NBD()
        self.h.set_export_name(export)
        self.h.connect_unix(socket_path)
        return self.h

    def __exit__(self, *a):
        self.h.shutdown()
        del self.h
        x.VBD.unplug(self.vbd)
        x.VBD.destroy(self.vbd)


def disk_hash(vdi):
    with Plugged(vdi, "RO") as h:
        size = h.get_size()
        d = hashlib.sha256()
        off = 0
        while off < size:
            n = min(8 * MiB, size - off)
            d.update(h.pread(n, off))
            off += n
        return d.hexdigest()


def read_range(h, off, n):
    return b"".join(h.pread(min(8 * MiB, off + n - o), o) for o in range(off, off + n, 8 * MiB))


def write_blocks(vdi, blocks, seed):
    """Writes 64 KiB of random data at a random place in each 2 MiB block of `blocks`."""
    rnd = random.Random(seed)
    with Plugged(vdi, "RW") as h:
        for b in blocks:
            h.pwrite(rnd.randbytes(64 * 1024), b * BLOCK + rnd.randrange(0, BLOCK - 64 * 1024) // 512 * 512)
        h.flush()


def new_vdi(sr, size, name="copy-test"):
    return x.VDI.create({"SR": sr, "virtual_size": str(size), "name_label": name, "name_description": "d-" + name,
                         "type": "user", "sharable": False, "read_only": False, "other_config": {"k": "v"}})


def wait_copying(task):
    """Waits (up to 20 s) until copy job `task` has copied its first bytes."""
    for _ in range(800):
        oc = x.task.get_other_config(task)
        if oc.get("copy_stage") == "copy" and int(oc.get("copy_bytes_done", "0")) > 0:
            return
        time.sleep(0.025)


def wait(task):
    while x.task.get_status(task) in ("pending", "cancelling"):
        time.sleep(0.05)
    return x.task.get_record(task)


def datapaths_live():
    """Data paths still serving under the run directory (an nbd socket, or a live pid)."""
    live = []
    for pidfile in glob.glob(run_dir + "/datapath/*/*/pid"):
        try:
            pid = int(open(pidfile).read().strip())
            os.kill(pid, 0)
            live.append(pidfile)
        except (ValueError, OSError):
            pass
    live += glob.glob(run_dir + "/datapath/*/*/nbd")
    return live


def vdis_of(sr):
    return sorted(x.SR.get_VDIs(sr))


# 1. Full copy EXT -> EXT of a VDI with scattered data (64 MiB, 7 blocks of 32 written).
src = new_vdi(ext1, 64 * MiB, "scattered")
x.VDI.add_to_other_config(src, "content_id", "cid-1")
write_blocks(src, [0, 3, 4, 11, 20, 29, 31], 1)
h_src = disk_hash(src)
task = x.Async.VDI.copy(src, ext2, "OpaqueRef:NULL", "OpaqueRef:NULL")
rec = wait(task)
dst = rec["result"].replace("<value>", "").replace("</value>", "")
check("Async.VDI.copy EXT->EXT succeeds", rec["status"] == "success", rec["error_info"])
if rec["status"] == "success":
    d = x.VDI.get_record(dst)
    check("the copy is on the destination SR, same size, name and description", d["SR"] == ext2
          and d["virtual_size"] == str(64 * MiB) and d["name_label"] == "scattered" and d["name_description"] == "d-scattered", d)
    check("the copy keeps other_config and content_id, sm_config is new", d["other_config"].get("k") == "v"
          and d["other_config"].get("content_id") == "cid-1" and "copy_job_task" not in d["other_config"], d["other_config"])
    check("EXT->EXT: the copy's whole-disk hash equals the source's", disk_hash(dst) == h_src)
    oc = rec["other_config"]
    check("the job's stages and progress are on the task", oc.get("copy_stage") == "done"
          and oc.get("copy_bytes_total") == str(7 * BLOCK) and oc.get("copy_bytes_done") == str(7 * BLOCK)
          and int(oc.get("copy_throughput_bytes_per_s", "0")) > 0 and rec["progress"] == 1.0, oc)
    check("only allocated blocks moved: the copy's VHD is smaller than the disk",
          os.path.getsize("%s/ext2/%s.vhd" % (root, x.VDI.get_uuid(dst))) < 24 * MiB)
check("source unchanged by the copy", disk_hash(src) == h_src)
check("no data path left after the copy", datapaths_live() == [], datapaths_live())

# 2. Full copy EXT -> NFS.
if nfs_sr:
    dst_nfs = x.VDI.copy(src, nfs_sr)
    check("VDI.copy (sync, two arguments) EXT->NFS: hash equal", x.VDI.get_SR(dst_nfs) == nfs_sr and disk_hash(dst_nfs) == h_src)
else:
    check("EXT->NFS copy (no NFS server given)", False, "SWIFTSM_TEST_NFS not set")

# 3. Full copy into an existing, larger VDI that already holds data elsewhere (zeros must land).
into = new_vdi(ext2, 80 * MiB, "into")
write_blocks(into, [1, 2, 35], 7)
got = x.VDI.copy(src, ext2, "OpaqueRef:NULL", into)
with Plugged(into, "RO") as h:
    first = read_range(h, 0, 64 * MiB)
    tail = read_range(h, 64 * MiB, 16 * MiB)
with Plugged(src, "RO") as h:
    whole = read_range(h, 0, 64 * MiB)
check("VDI.copy into_vdi: returns it, its first 64 MiB equal the source (old data zeroed), the rest kept",
      got == into and first == whole and tail != bytes(16 * MiB))

# 4. Delta copy: base = snapshot of the source; 5% of the blocks change; delta into a copy of the base.
big = new_vdi(ext1, 256 * MiB, "delta-src")          # 128 blocks
write_blocks(big, range(0, 128, 3), 11)
snap = x.VDI.snapshot(big, {})
base_copy = x.VDI.copy(snap, ext2)
changed = sorted(random.Random(5).sample(range(128), 7))  # ~5 %
write_blocks(big, changed, 12)
h_big = disk_hash(big)
check("delta setup: the source differs from the base copy", disk_hash(base_copy) != h_big)
task = x.Async.VDI.copy(big, ext2, snap, base_copy)
rec = wait(task)
check("delta copy succeeds into the base's copy", rec["status"] == "success", rec["error_info"])
check("delta copy: the destination's hash equals the source's", disk_hash(base_copy) == h_big)
check("delta copy wrote only the %d changed blocks (copy_bytes_written)" % len(changed),
      rec["status"] == "success" and rec["other_config"].get("copy_bytes_written") == str(len(changed) * BLOCK), rec["other_config"])
check("delta copy planned from the chains: only the changed blocks were read (copy_bytes_total, copy_delta_basis)",
      rec["other_config"].get("copy_delta_basis") == "layers 1 1"
      and rec["other_config"].get("copy_bytes_total") == str(len(changed) * BLOCK), rec["other_config"])
# 4b. Against an older snapshot: the source's chain holds two images above the base's parent.
older_copy = x.VDI.copy(snap, ext2)
snap2 = x.VDI.snapshot(big, {})
changed2 = [1, 2, changed[0], 127]
write_blocks(big, changed2, 13)
h_big3 = disk_hash(big)
task = x.Async.VDI.copy(big, ext2, snap, older_copy)
rec = wait(task)
oc = rec["other_config"]
check("delta against an older snapshot: planned from two images above the common one, hash equal",
      rec["status"] == "success" and oc.get("copy_delta_basis") == "layers 2 1"
      and oc.get("copy_bytes_total") == str(len(set(changed) | set(changed2)) * BLOCK)
      and disk_hash(older_copy) == h_big3, (rec["status"], rec["error_info"], oc))
# 4c. A base on another SR shares no image with the source: every block either holds is compared.
base_copy_copy = x.VDI.copy(base_copy, ext2)
task = x.Async.VDI.copy(big, ext2, base_copy, base_copy_copy)
rec = wait(task)
oc = rec["other_config"]
check("delta against a base on another SR: planned from contents, hash equal",
      rec["status"] == "success" and oc.get("copy_delta_basis") == "contents" and disk_hash(base_copy_copy) == h_big3,
      (rec["status"], rec["error_info"], oc))

# 5. Errors.
small = new_vdi(ext2, 32 * MiB, "small")
details = failure_of(x.VDI.copy, src, ext2, "OpaqueRef:NULL", small)
check("VDI_TOO_SMALL for an into_vdi smaller than the source", details and details[0] == "VDI_TOO_SMALL" and details[1] == small, details)
details = failure_of(x.VDI.copy, src, ext2, "OpaqueRef:NULL", snap)
check("a read-only (snapshot) destination is refused (VDI_READONLY)", details and details[0] == "VDI_READONLY", details)
details = failure_of(x.VDI.copy, "OpaqueRef:nonexistent", ext2)
check("HANDLE_INVALID for an unknown source", details and details[0] == "HANDLE_INVALID", details)

# 6. Cancel midway: a 512 MiB VDI with one write in each of its 256 blocks copies for seconds.
slow = new_vdi(ext1, 512 * MiB, "slow")
write_blocks(slow, range(256), 21)
h_slow = disk_hash(slow)
before = vdis_of(ext2)
task = x.Async.VDI.copy(slow, ext2, "OpaqueRef:NULL", "OpaqueRef:NULL")
wait_copying(task)
mid = x.task.get_progress(task)
x.task.cancel(task)
rec = wait(task)
check("cancel midway: the task is cancelled (from the copy stage, progress %.2f)" % mid,
      rec["status"] == "cancelled" and 0.05 <= mid < 0.9 and rec["other_config"].get("copy_stage") == "rolled-back",
      (rec["status"], mid, rec["other_config"]))
check("cancel: no orphan VDI on the destination SR", vdis_of(ext2) == before, set(vdis_of(ext2)) - set(before))
check("cancel: no VHD file left behind", sorted(glob.glob("%s/ext2/*.vhd" % root)).__len__() == len(before))
check("cancel: no copy VBD and no data path left", not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"]
      and datapaths_live() == [], datapaths_live())
check("cancel: the source is unchanged", disk_hash(slow) == h_slow)

# 7. toolstackd SIGKILLed midway, then restarted: the job is rolled back.
task = x.Async.VDI.copy(slow, ext2, "OpaqueRef:NULL", "OpaqueRef:NULL")
wait_copying(task)
killed_at = x.task.get_other_config(task)
live_before = datapaths_live()
daemon.send_signal(signal.SIGKILL)
daemon.wait()
x = start()
rec = x.task.get_record(task)
check("killed midway (stage %s): after restart the job is rolled back and its task failed" % killed_at.get("copy_stage"),
      rec["status"] == "failure" and rec["other_config"].get("copy_stage") == "rolled-back" and len(live_before) >= 2,
      (rec["status"], rec["other_config"], live_before))
check("killed: no orphan VDI on the destination SR", vdis_of(ext2) == before, set(vdis_of(ext2)) - set(before))
check("killed: no VHD file left behind", len(glob.glob("%s/ext2/*.vhd" % root)) == len(before))
check("killed: no copy VBD and no data path left", not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"]
      and datapaths_live() == [], datapaths_live())
check("killed: the source is unchanged", disk_hash(slow) == h_slow)

# 8. xe vdi-copy.
rc, out, err = xe_("vdi-copy", "uuid=" + x.VDI.get_uuid(src), "sr-uuid=" + x.SR.get_uuid(ext2))
ok = rc == 0 and len(out) == 36
check("xe vdi-copy prints the new VDI's uuid; its hash equals the source's",
      ok and disk_hash(x.VDI.get_by_uuid(out)) == h_src, (rc, out, err))
rc, out, err = xe_("vdi-copy", "uuid=" + x.VDI.get_uuid(src), "sr-uuid=" + x.SR.get_uuid(ext2),
                   "into-vdi-uuid=" + x.VDI.get_uuid(small))
check("xe vdi-copy into a smaller VDI: VDI_TOO_SMALL", rc != 0 and "VDI_TOO_SMALL" in err, (rc, out, err))
rc, out, err = xe_("vdi-copy", "uuid=" + x.VDI.get_uuid(big), "sr-uuid=" + x.SR.get_uuid(ext2))
full = x.VDI.get_by_uuid(out) if rc == 0 else None
write_blocks(big, [5, 6], 31)
h_big2 = disk_hash(big)
rc, out2, err = xe_("vdi-copy", "uuid=" + x.VDI.get_uuid(big), "sr-uuid=" + x.SR.get_uuid(ext2),
                    "base-vdi-uuid=" + x.VDI.get_uuid(snap), "into-vdi-uuid=" + (out or "none"))
check("xe vdi-copy base-vdi-uuid= into-vdi-uuid=: a delta onto an earlier copy gives the source's hash",
      full is not None and rc == 0 and out2 == out and disk_hash(full) == h_big2, (rc, out2, err))

# 9. Export and import over HTTP, as xapi serves them.
class UnixHTTP(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=120)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)




def http(method, path, body=None, headers=None):
    """One request to toolstackd's socket: (status, body bytes)."""
    c = UnixHTTP()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


auth = {"Authorization": "Basic cm9vdDo="}    # root, empty password: trusted on the local socket
xdir = root + "/xfer"
os.makedirs(xdir, exist_ok=True)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def whole(vdi):
    with Plugged(vdi, "RO") as h:
        return read_range(h, 0, h.get_size())


src_uuid = x.VDI.get_uuid(src)
status, data = http("GET", "/export_raw_vdi?vdi=%s&format=raw" % src_uuid, headers=auth)
check("GET /export_raw_vdi (Basic credentials): 200, the whole disk, hash equal", status == 200 and len(data) == 64 * MiB
      and hashlib.sha256(data).hexdigest() == h_src, (status, len(data)))
open(xdir + "/src.raw", "wb").write(data)
rc, out, err = xe_("vdi-export", "uuid=" + src_uuid, "filename=" + xdir + "/src-xe.raw")
check("xe vdi-export: the file's hash equals the disk's, and it is sparse",
      rc == 0 and sha(xdir + "/src-xe.raw") == h_src and os.stat(xdir + "/src-xe.raw").st_blocks * 512 < 16 * MiB, (rc, err))
rc, out, err = xe_("vdi-export", "uuid=" + src_uuid, "filename=" + xdir + "/src.vhd", "format=vhd")
vhd_size = os.path.getsize(xdir + "/src.vhd") if rc == 0 else 0
check("xe vdi-export format=vhd: only the 7 allocated blocks are in the VHD", rc == 0 and 7 * BLOCK < vhd_size < 8 * BLOCK, (rc, err, vhd_size))
q = subprocess.run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", xdir + "/src.vhd", xdir + "/src.raw"], capture_output=True, text=True)
check("qemu-img reads the exported VHD as the disk (qemu-img compare)", q.returncode == 0, q.stdout + q.stderr)
if vhd_tool:
    v = subprocess.run([vhd_tool, "check", "-n", xdir + "/src.vhd"], capture_output=True, text=True)
    check("vhd check accepts the exported VHD", v.returncode == 0 and "is valid" in v.stdout, v.stdout + v.stderr)

# A VHD of the differences against a base: big's snapshot, then big as it is now.
snap_uuid = x.VDI.get_uuid(snap)
h_now = disk_hash(big)
rc1, _, err1 = xe_("vdi-export", "uuid=" + snap_uuid, "filename=%s/%s.vhd" % (xdir, snap_uuid), "format=vhd")
rc2, _, err2 = xe_("vdi-export", "uuid=" + x.VDI.get_uuid(big), "filename=" + xdir + "/delta.vhd", "format=vhd", "base=" + snap_uuid)
delta_size = os.path.getsize(xdir + "/delta.vhd") if rc2 == 0 else 0
differ = len(set(changed) | set(changed2) | {5, 6})
check("xe vdi-export base=: a differencing VHD holding only the %d blocks that differ" % differ,
      rc1 == 0 and rc2 == 0 and differ * BLOCK < delta_size < (differ + 1) * BLOCK, (err1, err2, delta_size))
if vhd_tool:
    v = subprocess.run([vhd_tool, "check", "-n", xdir + "/delta.vhd"], capture_output=True, text=True)
    check("vhd check accepts the differencing VHD over the base's export (parent uuid and locators)",
          v.returncode == 0 and "is valid" in v.stdout, v.stdout + v.stderr)
    cat = subprocess.run([vhd_tool, "cat", xdir + "/delta.vhd"], capture_output=True)
    check("the base's export plus the differences read as the disk", hashlib.sha256(cat.stdout).hexdigest() == h_now,
          cat.stderr[-300:])

# Imports: raw (HTTP, session_id, chunked transfer-encoding), qemu-img's dynamic VHD, ours, a delta.
target = nfs_sr or ext2
imp = new_vdi(target, 64 * MiB, "import-raw")


def chunks(path):
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return
            yield b


status, data = http("PUT", "/import_raw_vdi?session_id=%s&vdi=%s&format=raw" % (session_ref, imp), body=chunks(xdir + "/src.raw"),
                    headers={})   # http.client sends an iterable body with chunked transfer-encoding
check("PUT /import_raw_vdi (chunked transfer-encoding) into a VDI on %s: its hash equals the source's"
      % ("NFS" if nfs_sr else "EXT"), status == 200 and disk_hash(imp) == h_src, (status, data))
subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", xdir + "/src.raw", xdir + "/qemu.vhd"], check=True)
imp2 = new_vdi(target, 64 * MiB, "import-qemu-vhd")
rc, out, err = xe_("vdi-import", "uuid=" + x.VDI.get_uuid(imp2), "filename=" + xdir + "/qemu.vhd", "format=vhd")
check("xe vdi-import format=vhd of qemu-img's VHD (a little larger: CHS rounding): hash equal",
      rc == 0 and disk_hash(imp2) == h_src, (rc, err))
imp3 = new_vdi(ext2, 80 * MiB, "import-over-data")
write_blocks(imp3, [1, 2, 35], 41)
tail_before = hashlib.sha256(whole(imp3)[64 * MiB:]).hexdigest()
rc, out, err = xe_("vdi-import", "uuid=" + x.VDI.get_uuid(imp3), "filename=" + xdir + "/src.vhd", "format=vhd")
after = whole(imp3)
check("xe vdi-import of our VHD over a VDI holding data: its first 64 MiB are the source (old data zeroed), the rest kept",
      rc == 0 and hashlib.sha256(after[:64 * MiB]).hexdigest() == h_src and hashlib.sha256(after[64 * MiB:]).hexdigest() == tail_before, (rc, err))
base_copy2 = x.VDI.copy(snap, ext2)
rc, out, err = xe_("vdi-import", "uuid=" + x.VDI.get_uuid(base_copy2), "filename=" + xdir + "/delta.vhd", "format=vhd")
check("xe vdi-import of the differencing VHD onto a copy of the base gives the disk's hash",
      rc == 0 and disk_hash(base_copy2) == h_now, (rc, err))

# Bad uploads: refused with a typed error, the VDI unchanged, nothing left plugged.
victim = new_vdi(ext2, 64 * MiB, "victim")
write_blocks(victim, [0, 9], 51)
h_victim = disk_hash(victim)
raw_delta = open(xdir + "/delta.vhd", "rb").read()
corrupt = bytearray(open(xdir + "/src.vhd", "rb").read())
corrupt[512 + 40] ^= 0xff                                  # the dynamic header's checksum no longer holds
overlap = bytearray(open(xdir + "/src.vhd", "rb").read())
hdr_bat = int.from_bytes(overlap[512 + 16:512 + 24], "big")
first = overlap[hdr_bat:hdr_bat + 4]
for i in range(1, 32):                                      # two BAT entries pointing at one block
    if overlap[hdr_bat + 4 * i:hdr_bat + 4 * i + 4] == b"\xff\xff\xff\xff":
        overlap[hdr_bat + 4 * i:hdr_bat + 4 * i + 4] = first
        break
cases = [
    ("a VHD whose header checksum is wrong", "format=vhd", bytes(corrupt), 400, "VDI_IO_ERROR"),
    ("a VHD whose BAT has two blocks at one place", "format=vhd", bytes(overlap), 400, "VDI_IO_ERROR"),
    ("a raw disk larger than the VDI", "format=raw", open(xdir + "/src.raw", "rb").read() + bytes(MiB), 400, "VDI_IO_ERROR"),
    ("raw bytes sent as format=vhd", "format=vhd", open(xdir + "/src.raw", "rb").read(), 400, "VDI_IO_ERROR"),
    ("an unknown format", "format=qcow2", b"x" * 512, 404, "INTERNAL_ERROR"),
]
for name, fmt, body, want, code in cases:
    status, data = http("PUT", "/import_raw_vdi?vdi=%s&%s" % (victim, fmt), body=body, headers=auth)
    check("import of %s: HTTP %d %s" % (name, want, code), status == want and data.decode().startswith(code), (status, data[:200]))
check("the bad uploads left the VDI unchanged", disk_hash(victim) == h_victim)
status, data = http("PUT", "/import_raw_vdi?vdi=%s&format=vhd" % snap, body=raw_delta, headers=auth)
check("import into a snapshot: HTTP 403 VDI_READONLY", status == 403 and data.decode().startswith("VDI_READONLY"), (status, data[:200]))
status, data = http("GET", "/export_raw_vdi?session_id=OpaqueRef:forged&vdi=%s" % src_uuid)
check("an unknown session: HTTP 403 SESSION_INVALID", status == 403 and data.decode().startswith("SESSION_INVALID"), (status, data[:200]))
status, data = http("GET", "/export_raw_vdi?vdi=%s" % src_uuid)
check("no credentials: HTTP 401", status == 401, (status, data[:200]))
with open(xdir + "/larger.raw", "wb") as f:
    f.truncate(64 * MiB + 512)
rc, out, err = xe_("vdi-import", "uuid=" + x.VDI.get_uuid(victim), "filename=" + xdir + "/larger.raw", "format=raw")
check("xe vdi-import of a file larger than the VDI: VDI_IO_ERROR, the VDI unchanged",
      rc != 0 and "VDI_IO_ERROR" in err and disk_hash(victim) == h_victim, (rc, err))
# Cut short: the upload stops at 3 MB of a 6 MB VHD, the client gone.
c = socket.socket(socket.AF_UNIX)
c.connect(sock)
c.sendall(("PUT /import_raw_vdi?vdi=%s&format=vhd HTTP/1.1\r\nAuthorization: Basic cm9vdDo=\r\nContent-Length: %d\r\n\r\n"
           % (base_copy2, len(raw_delta))).encode() + raw_delta[:len(raw_delta) // 2])
c.close()
time.sleep(1.5)
check("no copy VBD and no data path left after the transfers and refusals",
      not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"] and datapaths_live() == [], datapaths_live())
check("no transfer task left", not [t for t in x.task.get_all() if x.task.get_name_label(t).startswith("VDI.") and
                                     x.task.get_name_label(t).endswith("_raw_vdi")])

# toolstackd killed mid-export: at restart the export's VBD is unplugged and its data path gone.
c = socket.socket(socket.AF_UNIX)
c.connect(sock)
c.sendall(("GET /export_raw_vdi?vdi=%s HTTP/1.1\r\nAuthorization: Basic cm9vdDo=\r\n\r\n" % x.VDI.get_uuid(slow)).encode())
got = c.recv(1 << 20)
live_mid = datapaths_live()
daemon.send_signal(signal.SIGKILL)
daemon.wait()
c.close()
x = start()
check("killed mid-export: after restart no export VBD and no data path is left",
      len(got) > 0 and len(live_mid) >= 1 and not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"]
      and datapaths_live() == [], (len(got), live_mid, datapaths_live()))

# 10. Faults: a second job on a VDI being copied, a destination SR that fills up midway, a
# corrupt source VHD: a clear task error, the source untouched, nothing half-made left behind.
task = x.Async.VDI.copy(slow, ext2, "OpaqueRef:NULL", "OpaqueRef:NULL")
for _ in range(400):
    if x.task.get_other_config(task).get("copy_stage") == "copy":
        break
    time.sleep(0.025)
details = failure_of(x.VDI.copy, slow, ext2)
check("a second copy of a VDI being copied: OTHER_OPERATION_IN_PROGRESS", details and details[0] == "OTHER_OPERATION_IN_PROGRESS", details)
details = failure_of(x.VDI.destroy, slow)
check("destroying a VDI being copied: refused (VDI_IN_USE: the copy's VBD has it)", details and details[0] in ("VDI_IN_USE", "OTHER_OPERATION_IN_PROGRESS"), details)
details = failure_of(x.VDI.resize, slow, str(1024 * MiB))
online = failure_of(x.VDI.resize_online, slow, str(1024 * MiB))
check("resizing a VDI being copied, offline or online: refused, its size unchanged",
      details and details[0] in ("VDI_IN_USE", "OTHER_OPERATION_IN_PROGRESS") and online and online[0] == "OTHER_OPERATION_IN_PROGRESS"
      and x.VDI.get_virtual_size(slow) == str(512 * MiB), (details, online))
rec = wait(task)
dst = rec["result"].replace("<value>", "").replace("</value>", "")
check("the first copy completes with the source's hash", rec["status"] == "success" and disk_hash(dst) == h_slow, rec["error_info"])
x.VDI.destroy(dst)

small_dir = root + "/small"
os.makedirs(small_dir, exist_ok=True)


@contextlib.contextmanager
def full_sr(name, what):
    """An EXT SR on a 40 MiB tmpfs (small_dir) that a copy fills up; None (a failed check) when
    the tmpfs cannot be mounted. Forgotten and unmounted afterwards."""
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", small_dir]).returncode != 0:
        check("a tmpfs for the full-SR %s (needs root)" % what, False, "mount failed")
        yield None
        return
    try:
        sr = x.SR.create(host, {"path": small_dir}, "0", name, "", "ext", "user", False, {})
        yield sr
        for pbd in x.SR.get_PBDs(sr):
            x.PBD.unplug(pbd)
        x.SR.forget(sr)
    finally:
        subprocess.run(["umount", small_dir])


with full_sr("copy-small", "case") as small_sr:
    if small_sr:
        before_small = vdis_of(small_sr)
        task = x.Async.VDI.copy(slow, small_sr, "OpaqueRef:NULL", "OpaqueRef:NULL")
        rec = wait(task)
        check("a destination SR that fills up midway: the task fails with a clear error",
              rec["status"] == "failure" and rec["error_info"][0] == "VDI_COPY_FAILED" and "space" in " ".join(rec["error_info"]).lower(),
              rec["error_info"])
        check("full SR: no orphan VDI and no VHD file left on it", vdis_of(small_sr) == before_small
              and not glob.glob(small_dir + "/*.vhd"), (vdis_of(small_sr), os.listdir(small_dir)))
        check("full SR: no copy VBD and no data path left, the source unchanged",
              not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"] and datapaths_live() == []
              and disk_hash(slow) == h_slow, datapaths_live())

def copy_through_outage(sr, stop, restart, what):
    """Copies `slow` into SR `sr`, runs `stop` once the copy has begun, `restart` 4 s later;
    checks that the copy completes with the source's hash."""
    task = x.Async.VDI.copy(slow, sr, "OpaqueRef:NULL", "OpaqueRef:NULL")
    wait_copying(task)
    stop()
    oc = x.task.get_other_config(task)
    stopped_at = "%s of %s" % (oc.get("copy_bytes_done"), oc.get("copy_bytes_total"))
    running = x.task.get_status(task) == "pending" and oc.get("copy_bytes_done") != oc.get("copy_bytes_total")
    time.sleep(4)
    restart()
    rec = wait(task)
    dst = rec["result"].replace("<value>", "").replace("</value>", "")
    check("%s gone for 4 s mid-copy (at %s bytes): the copy completes with the source's hash" % (what, stopped_at),
          running and rec["status"] == "success" and disk_hash(dst) == h_slow, (running, rec["status"], rec["error_info"]))
    if rec["status"] == "success":
        x.VDI.destroy(dst)


# The destination's NFS server stops for a few seconds mid-copy (a private NFS-Ganesha, stopped
# as an administrator would): the data path holds the writes through the outage and the copy
# completes with the source's hash.
if nfs:
    nfs_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nfs-test-server.sh")
    private = root + "/nfs-private"
    port = None
    for candidate in range(22049, 22999, 2):
        busy = subprocess.run(["ss", "-Htln", "sport = :%d or sport = :%d" % (candidate, candidate + 1)],
                              capture_output=True, text=True).stdout.strip()
        if busy:
            continue
        if subprocess.run(["bash", nfs_script, "start", private + "/state", str(candidate), private + "/export"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            port = candidate
            break
    if port:
        try:
            psr = x.SR.create(host, {"server": "127.0.0.1", "serverpath": private + "/export",
                                     "options": "port=%d,mountport=%d" % (port, port + 1)}, "0", "copy-nfs-outage", "", "nfs", "user", True, {})
            quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            copy_through_outage(psr, lambda: subprocess.run(["bash", nfs_script, "stop", private + "/state"], **quiet),
                                lambda: subprocess.run(["bash", nfs_script, "start", private + "/state", str(port), private + "/export"], **quiet),
                                "the destination's NFS server")
            for pbd in x.SR.get_PBDs(psr):
                x.PBD.unplug(pbd)
            x.SR.forget(psr)
        finally:
            subprocess.run(["bash", nfs_script, "stop", private + "/state"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        check("a private NFS server for the outage case", False, "no free port pair")

bad = new_vdi(ext1, 64 * MiB, "corrupt-source")
write_blocks(bad, [0, 1], 61)
bad_file = "%s/ext1/%s.vhd" % (root, x.VDI.get_uuid(bad))
with open(bad_file, "r+b") as f:
    f.seek(512 + 40)                 # the dynamic header's checksum
    good_checksum = f.read(4)
    f.seek(512 + 40)
    f.write(b"\xde\xad\xbe\xef")
before = vdis_of(ext2)
details = failure_of(x.VDI.copy, bad, ext2)
check("a corrupt source VHD: the copy fails with an error naming it", details is not None and "header" in " ".join(details).lower(), details)
check("corrupt source: no orphan VDI, no VBD and no data path left", vdis_of(ext2) == before
      and not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"] and datapaths_live() == [],
      set(vdis_of(ext2)) - set(before))
# Mended, so that the SR's later deletes (which scan every VHD in it) are not refused.
with open(bad_file, "r+b") as f:
    f.seek(512 + 40)
    f.write(good_checksum)

# 11. toolstackd killed right after recording each stage of a job (before its side effects):
# at its next start every job is rolled back, nothing it made is left, the source is unchanged.
def crash_at(stage, action):
    """Restarts the daemon to die at `stage`, runs `action` (it may see the daemon go), then
    restarts it normally; whether it died."""
    global x
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    x = start(SWIFTSM_TEST_CRASH_AT_JOB_STAGE=stage)
    try:
        action()
    except Exception:
        pass
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    died = daemon.returncode == 137
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    x = start()
    return died


def nothing_left(where):
    return (not [v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"] and datapaths_live() == []
            and not [v for v in x.VDI.get_all() if "copy_job_task" in x.VDI.get_other_config(v)], where)


before = vdis_of(ext2)
files_before = len(glob.glob("%s/ext2/*.vhd" % root))
for stage in ["create-destination", "attach", "copy", "detach", "finish"]:
    died = crash_at(stage, lambda: x.VDI.copy(src, ext2))
    ok_left, _ = nothing_left(stage)
    check("VDI.copy killed at stage %s: rolled back at restart (no orphan VDI or VHD file, no VBD or data path, source unchanged)"
          % stage, died and ok_left and vdis_of(ext2) == before and len(glob.glob("%s/ext2/*.vhd" % root)) == files_before
          and disk_hash(src) == h_src, (died, set(vdis_of(ext2)) - set(before), datapaths_live()))
for stage in ["attach", "export", "detach"]:
    died = crash_at(stage, lambda: http("GET", "/export_raw_vdi?vdi=%s" % x.VDI.get_uuid(src), headers=auth))
    ok_left, _ = nothing_left(stage)
    check("an export killed at stage %s: nothing left at restart" % stage, died and ok_left, datapaths_live())
landing = new_vdi(ext2, 64 * MiB, "crash-import")
h_empty = disk_hash(landing)
for stage in ["attach", "import", "detach"]:
    died = crash_at(stage, lambda: http("PUT", "/import_raw_vdi?vdi=%s" % landing, body=open(xdir + "/src.raw", "rb").read(), headers=auth))
    ok_left, _ = nothing_left(stage)
    h = disk_hash(landing)
    check("an import killed at stage %s: nothing left at restart, the VDI %s" % (stage, "complete" if stage == "detach" else "untouched"),
          died and ok_left and h == (h_src if stage == "detach" else h_empty), (died, datapaths_live()))

# 12. Task.cancel at every stage of a copy (the daemon pauses 1.5 s at the stage): cancelled and
# rolled back up to the copy's end; from the detach on, the job is past its last safe point and
# completes, as xapi's tasks do.
def cancel_at(stage, start_job):
    """Restarts the daemon to pause at `stage`, starts a job with `start_job` (its task), cancels
    it once it records that stage; the task's record when it ends."""
    global x
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    x = start(SWIFTSM_TEST_PAUSE_AT_JOB_STAGE=stage)
    task = start_job()
    for _ in range(400):
        if x.task.get_other_config(task).get("copy_stage") == stage:
            break
        time.sleep(0.01)
    x.task.cancel(task)
    return wait(task)


for stage in ["create-destination", "attach", "copy", "detach", "finish"]:
    before = vdis_of(ext2)
    rec = cancel_at(stage, lambda: x.Async.VDI.copy(src, ext2, "OpaqueRef:NULL", "OpaqueRef:NULL"))
    ok_left, _ = nothing_left(stage)
    if stage in ("detach", "finish"):
        dst = rec["result"].replace("<value>", "").replace("</value>", "")
        check("cancel at stage %s: past the last safe point, the copy completes with the source's hash" % stage,
              rec["status"] == "success" and disk_hash(dst) == h_src and ok_left, (rec["status"], rec["error_info"]))
        x.VDI.destroy(dst)
    else:
        check("cancel at stage %s: the task is cancelled, nothing left, the source unchanged" % stage,
              rec["status"] == "cancelled" and ok_left and vdis_of(ext2) == before and disk_hash(src) == h_src,
              (rec["status"], rec["error_info"], set(vdis_of(ext2)) - set(before)))
daemon.send_signal(signal.SIGTERM)
daemon.wait()
x = start()

# 13. Live migration (VDI.pool_migrate) of a VDI plugged through a VBD of the control domain,
# its NBD client (standing in for the VM) writing 4 KiB records without pause all along: EXT ->
# EXT, EXT -> NFS and NFS -> EXT. The client sees no error, goes on writing after the switch,
# and the VDI on the destination holds the data from before and every acknowledged write.
import struct
import threading

SLOTS = 1024


class SlotWriter(threading.Thread):
    """Writes record i (i and its slot, repeated) to slot i % SLOTS until stopped; keeps the last
    acknowledged record of each slot and the longest wait for an acknowledgement."""

    def __init__(self, h):
        super().__init__(daemon=True)
        self.h, self.halt, self.count, self.longest, self.error = h, False, 0, 0.0, None
        self.last = {}

    def run(self):
        i = 0
        try:
            while not self.halt:
                i += 1
                slot = i % SLOTS
                t0 = time.monotonic()
                self.h.pwrite(struct.pack(">QQ", i, slot) * 256, slot * 4096)
                self.longest = max(self.longest, time.monotonic() - t0)
                self.last[slot] = i
                self.count = i
        except Exception as e:
            self.error = e

    def finish(self):
        self.halt = True
        self.join(30)

    def expected(self, before):
        out = bytearray(before)
        for slot, i in self.last.items():
            out[slot * 4096:(slot + 1) * 4096] = struct.pack(">QQ", i, slot) * 256
        return bytes(out)


def migration_leftovers(keep):
    """What a migration job may have left: job VBDs, tagged VDIs, data paths but the client's."""
    return ([v for v in x.VBD.get_all() if x.VBD.get_other_config(v).get("owner") == "copy"]
            + [v for v in x.VDI.get_all() if "copy_job_task" in x.VDI.get_other_config(v)]
            + [p for p in datapaths_live() if not any(k in p for k in keep)])


def migrate_live(src_sr, dst_sr, label, seed, vhd_file=True):
    vdi = new_vdi(src_sr, 64 * MiB, "live-" + label)
    write_blocks(vdi, range(0, 32, 3), seed)
    plugged = Plugged(vdi, "RW")
    h = plugged.__enter__()
    before = read_range(h, 0, 64 * MiB)
    writer = SlotWriter(h)
    writer.start()
    while writer.count < 500:
        time.sleep(0.01)
    t0 = time.monotonic()
    task = x.Async.VDI.pool_migrate(vdi, dst_sr, {})
    rec = wait(task)
    took = time.monotonic() - t0
    at_end = writer.count
    time.sleep(0.3)
    writer.finish()
    new = rec["result"].replace("<value>", "").replace("</value>", "")
    ok = rec["status"] == "success" and writer.error is None
    check("live migration %s: the task succeeds in %.2f s, the client wrote %d records without an error, %d after the switch"
          % (label, took, writer.count, writer.count - at_end), ok and writer.count > at_end, (rec["status"], rec["error_info"], writer.error))
    if not ok:
        plugged.__exit__()
        return
    h.flush()
    expected = writer.expected(before)
    through_client = read_range(h, 0, 64 * MiB)
    new_uuid = x.VDI.get_uuid(new)
    gone = failure_of(x.VDI.get_record, vdi)
    check("live migration %s: the VBD now uses the new VDI on the destination SR, named as the old one, which is gone" % label,
          x.VBD.get_VDI(plugged.vbd) == new and x.VDI.get_SR(new) == dst_sr and x.VBD.get_currently_attached(plugged.vbd)
          and x.VDI.get_name_label(new) == "live-" + label and gone is not None and gone[0] == "HANDLE_INVALID",
          (x.VBD.get_VDI(plugged.vbd), new, gone))
    check("live migration %s: the client reads the data from before and its last acknowledged record in every slot" % label,
          through_client == expected)
    print("     longest wait for a write's acknowledgement during the migration %s: %.1f ms (switch %s s)"
          % (label, writer.longest * 1000, rec["other_config"].get("migrate_switch_seconds")), flush=True)
    plugged.__exit__()
    check("live migration %s: after the unplug the VDI holds the same (SHA-256), nothing of the job is left" % label,
          disk_hash(new) == hashlib.sha256(expected).hexdigest() and migration_leftovers([]) == [], migration_leftovers([]))
    if vhd_tool and vhd_file:
        files = glob.glob("%s/*/%s.vhd" % (root, new_uuid)) + (glob.glob("%s/*/%s.vhd" % (nexport + "/copy", new_uuid)) if nfs else [])
        r = subprocess.run([vhd_tool, "check", "-n", files[0]], capture_output=True, text=True) if files else None
        check("live migration %s: vhd check accepts the new VDI's VHD" % label, r is not None and r.returncode == 0, r and r.stdout + r.stderr)
    return new


moved = migrate_live(ext1, ext2, "EXT->EXT", 131)
if nfs_sr:
    there = migrate_live(ext1, nfs_sr, "EXT->NFS", 132)
    back = migrate_live(nfs_sr, ext2, "NFS->EXT", 133)

# LVM over iSCSI (a private tgt target with one LUN): a copy EXT -> LVM, and live migrations
# NFS (or EXT) -> LVM and back, with the writer.
iscsi_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "iscsi-test-target.sh")
if shutil.which("tgtd"):
    import re
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        iport = probe_port.getsockname()[1]
    istate = tempfile.mkdtemp(prefix="ct", dir="/tmp")
    iqn = "iqn.2026-12.org.swiftsm.test:copy"
    lvm_link = sm_dir + "/LVMOISCSISR"
    if not os.path.exists(lvm_link):
        os.symlink(os.path.realpath(sm_dir + "/EXTSR"), lvm_link)
    try:
        started = subprocess.run(["bash", iscsi_script, "start", istate, str(iport), iqn, "1024", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dc = {"target": "127.0.0.1", "port": str(iport), "targetIQN": iqn}
        probe = (failure_of(x.SR.probe, host, dc, "lvmoiscsi", {}) or []) if started.returncode == 0 else [started.stderr]
        found = re.search(r"<SCSIid>\s*([^<\s]+)\s*</SCSIid>", " ".join(probe))
        check("LVM over iSCSI: SR.probe without SCSIid lists the LUN", found is not None, probe)
        if found:
            dc["SCSIid"] = found.group(1)
            lvm_sr = x.SR.create(host, dc, "0", "copy-lvm", "", "lvmoiscsi", "user", True, {})
            src_lvm = new_vdi(ext1, 64 * MiB, "to-lvm")
            write_blocks(src_lvm, range(0, 32, 5), 151)
            copied = x.VDI.copy(src_lvm, lvm_sr)
            check("VDI.copy EXT -> LVM over iSCSI: the copy holds the source's data (SHA-256)",
                  disk_hash(copied) == disk_hash(src_lvm) and x.VDI.get_SR(copied) == lvm_sr)
            x.VDI.destroy(copied)
            x.VDI.destroy(src_lvm)
            # The LUN's target killed mid-copy (as a crash would) and started again 4 s later:
            # the destination's data path holds its writes and reconnects; the copy completes.
            quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            copy_through_outage(lvm_sr, lambda: subprocess.run(["bash", iscsi_script, "kill", istate], **quiet),
                                lambda: subprocess.run(["bash", iscsi_script, "start", istate, str(iport), iqn, "1024", "1"], **quiet),
                                "the destination LUN's iSCSI target (killed)")
            origin = nfs_sr or ext1
            name = "NFS" if nfs_sr else "EXT"
            on_lvm = migrate_live(origin, lvm_sr, name + "->LVM", 152, vhd_file=False)
            if on_lvm:
                off_lvm = migrate_live(lvm_sr, ext2, "LVM->EXT", 153)
                if off_lvm:
                    x.VDI.destroy(off_lvm)
            for v in x.SR.get_VDIs(lvm_sr):
                if not x.VDI.get_managed(v):
                    continue
                try:
                    x.VDI.destroy(v)
                except XenAPI.Failure:
                    pass
            for pbd in x.SR.get_PBDs(lvm_sr):
                x.PBD.unplug(pbd)
            x.SR.forget(lvm_sr)
    finally:
        subprocess.run(["bash", iscsi_script, "stop", istate], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(istate, ignore_errors=True)

lone = new_vdi(ext1, 16 * MiB, "unplugged")
check("pool_migrate of a VDI no VBD has plugged: VDI_NEEDS_VM_FOR_MIGRATE",
      (failure_of(x.VDI.pool_migrate, lone, ext2, {}) or [""])[0] == "VDI_NEEDS_VM_FOR_MIGRATE")
with Plugged(lone, "RW") as h:
    check("pool_migrate to the VDI's own SR: refused", (failure_of(x.VDI.pool_migrate, lone, ext1, {}) or [""])[0] == "OPERATION_NOT_ALLOWED")
    task = x.Async.VDI.pool_migrate(lone, ext2, {})
    second = failure_of(x.VDI.pool_migrate, lone, ext2, {})
    rec = wait(task)
    check("a second migration of a VDI being migrated: OTHER_OPERATION_IN_PROGRESS, the first one succeeds",
          second is not None and second[0] == "OTHER_OPERATION_IN_PROGRESS" and rec["status"] == "success", (second, rec["status"]))
    lone = rec["result"].replace("<value>", "").replace("</value>", "")
    rc, out, err = xe_("vdi-pool-migrate", "uuid=" + x.VDI.get_uuid(lone), "sr-uuid=" + x.SR.get_uuid(ext1))
    h.pwrite(b"\x33" * 4096, 0)
    back = failure_of(x.VDI.get_by_uuid, out) is None and x.VDI.get_by_uuid(out)
    check("xe vdi-pool-migrate moves it back and prints the new uuid; the client goes on",
          rc == 0 and back and x.VDI.get_SR(back) == ext1 and h.pread(4096, 0) == b"\x33" * 4096, (rc, out, err))
    lone = back or lone

# Faults: the source resized or destroyed during a migration (refused while it runs), and a
# destination SR that fills up midway (the migration fails and rolls back, the client stays on
# the source, nothing is left on the full SR).
with Plugged(slow, "RW") as h:
    task = x.Async.VDI.pool_migrate(slow, ext2, {})
    wait_copying(task)
    resize = failure_of(x.VDI.resize_online, slow, str(1024 * MiB))
    destroy = failure_of(x.VDI.destroy, slow)
    rec = wait(task)
    moved_slow = rec["result"].replace("<value>", "").replace("</value>", "")
    check("an online resize during a migration: OTHER_OPERATION_IN_PROGRESS; a destroy: VDI_IN_USE; the migration completes",
          (resize or [""])[0] == "OTHER_OPERATION_IN_PROGRESS" and (destroy or [""])[0] == "VDI_IN_USE" and rec["status"] == "success"
          and x.VDI.get_virtual_size(moved_slow) == str(512 * MiB), (resize, destroy, rec["status"], rec["error_info"]))
    slow = moved_slow
    with full_sr("migrate-small", "migration") as small_sr:
        if small_sr:
            rec = wait(x.Async.VDI.pool_migrate(slow, small_sr, {}))
            # (a hidden, empty base copy the job's leaf was snapshotted from is the collector's)
            managed = [v for v in vdis_of(small_sr) if x.VDI.get_managed(v)]
            check("a destination SR that fills up during a migration: the task fails, the VBD stays on the source, nothing left on the SR",
                  rec["status"] == "failure" and x.VBD.get_VDI(x.VDI.get_VBDs(slow)[0]) == slow and managed == []
                  and len(glob.glob(small_dir + "/*.vhd")) == len(vdis_of(small_sr)) and migration_leftovers([x.VDI.get_uuid(slow)]) == [],
                  (rec["status"], rec["error_info"], managed, migration_leftovers([x.VDI.get_uuid(slow)])))
            check("full SR during a migration: the client reads the source's data", hashlib.sha256(read_range(h, 0, 512 * MiB)).hexdigest() == h_slow)

# Killed at every stage (toolstackd SIGKILLed right after recording it) and cancelled at every
# stage: before the switch the job is rolled back (the VBD still on the source, its client
# still served from it); from the switch on it completes (at the restart, after a crash).
stages = ["create-destination", "attach", "mirror", "snapshot", "copy", "compose", "switch", "finish"]


def staged_migration(stage, crash):
    global x
    vdi = new_vdi(ext1, 32 * MiB, "staged")
    write_blocks(vdi, range(0, 16, 4), 140 + stages.index(stage))
    plugged = Plugged(vdi, "RW")
    h = plugged.__enter__()
    h.pwrite(b"\x5a" * 65536, 1 * MiB)
    expected = read_range(h, 0, 32 * MiB)
    if crash:
        died = crash_at(stage, lambda: x.VDI.pool_migrate(vdi, ext2, {}))
        rec = None
    else:
        rec = cancel_at(stage, lambda: x.Async.VDI.pool_migrate(vdi, ext2, {}))
        died = True
    completes = stage in (("finish",) if crash else ("switch", "finish"))
    now = x.VBD.get_VDI(plugged.vbd)
    moved = now != vdi and x.VDI.get_SR(now) == ext2 and failure_of(x.VDI.get_record, vdi) is not None
    stayed = now == vdi and x.VDI.get_SR(vdi) == ext1
    # The client goes on: a write, then everything read back through it.
    h.pwrite(b"\xa5" * 4096, 2 * MiB)
    expected = expected[:2 * MiB] + b"\xa5" * 4096 + expected[2 * MiB + 4096:]
    served = read_range(h, 0, 32 * MiB) == expected
    status_ok = rec is None or rec["status"] == ("success" if completes else "cancelled")
    left = migration_leftovers([x.VDI.get_uuid(now)])
    check("%s at stage %s: %s, the client served throughout, nothing of the job left"
          % ("killed" if crash else "cancelled", stage, "completed" if completes else "rolled back"),
          died and status_ok and (moved if completes else stayed) and served and x.VBD.get_currently_attached(plugged.vbd) and left == [],
          (died, rec and (rec["status"], rec["error_info"]), now, served, left))
    plugged.__exit__()
    x.VDI.destroy(now)


for stage in stages:
    staged_migration(stage, crash=True)
for stage in stages:
    staged_migration(stage, crash=False)
daemon.send_signal(signal.SIGTERM)
daemon.wait()
x = start()

daemon.send_signal(signal.SIGTERM)
daemon.wait()
check("no data path left at the end", datapaths_live() == [], datapaths_live())
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
