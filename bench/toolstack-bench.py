#!/usr/bin/env python3
"""Toolstack benchmark, side by side in one run: whole-call latency of VDI.snapshot through the
XenAPI SDK and through `xe vdi-snapshot`, against calling `smdriver` directly with the same
document; then N concurrent SDK clients doing record reads and VDI create/snapshot/destroy on one
SR (calls per second, p99 latency, errors). Usage: TOOLSTACKD=… XE=… SMDRIVER=… [STORE=postgres] toolstack-bench.py"""
import os, statistics, subprocess, sys, threading, time, xmlrpc.client
import XenAPI

TOOLSTACKD, XE, SMDRIVER = os.environ["TOOLSTACKD"], os.environ["XE"], os.environ["SMDRIVER"]
ROUNDS = int(os.environ.get("ROUNDS", "20"))
CLIENTS = int(os.environ.get("CLIENTS", "100"))
ITERATIONS = int(os.environ.get("ITERATIONS", "3"))
STORE = os.environ.get("STORE", "sqlite")     # or postgres: a server from scripts/postgres-test-server.sh
HERE = os.path.dirname(os.path.abspath(__file__))

root = "/tmp/tsb-%d" % os.getpid()      # no "_": the SDK's UDSTransport turns "_" into "/"
os.makedirs(root, mode=0o700)
os.makedirs(root + "/sm"); os.makedirs(root + "/sr")
os.symlink(SMDRIVER, root + "/sm/EXTSR")
sock = root + "/xapi"
env = dict(os.environ, SWIFTSM_GC_AUTOSTART="0")
store_args = []
if STORE == "postgres":
    os.chmod(root, 0o755)      # the server runs as user postgres under it
    pg_port = str(40000 + os.getpid() % 20000)
    subprocess.run([HERE + "/../scripts/postgres-test-server.sh", "start", root + "/pg", pg_port], check=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", pg_port, "-U", "swiftsm", "-d", "postgres", "-qc", "CREATE DATABASE bench"], check=True)
    store_args = ["--database", "postgres://swiftsm@127.0.0.1:%s/bench" % pg_port]
daemon = subprocess.Popen([TOOLSTACKD, "--state-dir", root + "/st", "--socket", sock, "--sm-dir", root + "/sm",
                           "--run-dir", root + "/r"] + store_args, env=env, stderr=open(root + "/log", "w"))
for _ in range(600):
    if os.path.exists(sock) and "ready" in open(root + "/log").read(): break
    time.sleep(0.1)


def session():
    s = XenAPI.Session("http://" + sock.replace("/", "_"), transport=XenAPI.UDSTransport())
    s.xenapi.login_with_password("root", "", "1.0", "bench")
    return s


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


try:
    s = session(); x = s.xenapi
    host = x.host.get_all()[0]
    sr = x.SR.create(host, {"path": root + "/sr"}, "0", "bench", "", "ext", "user", False, {})
    sr_uuid = x.SR.get_uuid(sr)
    vdi = x.VDI.create({"SR": sr, "virtual_size": str(64 << 20), "name_label": "bench", "type": "user",
                        "sharable": False, "read_only": False, "other_config": {}})
    vdi_uuid = x.VDI.get_uuid(vdi)

    def direct():
        doc = xmlrpc.client.dumps(({"host_ref": host, "command": "vdi_snapshot", "args": [],
                                    "device_config": {"SRmaster": "true", "path": root + "/sr"},
                                    "sr_ref": sr, "sr_uuid": sr_uuid, "vdi_ref": vdi, "vdi_uuid": vdi_uuid,
                                    "vdi_location": vdi_uuid, "driver_params": {}},), "vdi_snapshot")
        out = subprocess.run([root + "/sm/EXTSR", doc], env={"PATH": os.environ["PATH"], "ORIGINATOR": "SM",
                             "SWIFTSM_RUN_DIR": root + "/r", "SWIFTSM_GC_AUTOSTART": "0"}, capture_output=True, text=True)
        assert "<fault>" not in out.stdout, out.stdout

    def sdk():
        x.VDI.snapshot(vdi, {})

    def xe():
        subprocess.run([XE, "vdi-snapshot", "uuid=" + vdi_uuid], env=dict(os.environ, XE_SOCKET=sock), check=True,
                       capture_output=True)

    results = {}
    for name, fn in (("smdriver vdi_snapshot (direct)", direct), ("XenAPI SDK VDI.snapshot", sdk), ("xe vdi-snapshot", xe)):
        times = []
        for _ in range(ROUNDS):
            t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1000)
        results[name] = statistics.median(times)
    base = results["smdriver vdi_snapshot (direct)"]
    print("VDI.snapshot whole-call latency, median of %d (ms):" % ROUNDS)
    for name, ms in results.items():
        print("  %-34s %8.1f   x%.2f" % (name, ms, ms / base))

    # Concurrent clients on one SR.
    latencies, errors, lock = [], [], threading.Lock()

    def client():
        try:
            c = session(); cx = c.xenapi
        except Exception as e:
            with lock: errors.append(repr(e))
            return
        for i in range(ITERATIONS):
            for call in ("read", "create", "snapshot", "destroy"):
                t = time.perf_counter()
                try:
                    if call == "read":
                        cx.VDI.get_all_records(); cx.SR.get_record(sr)
                    elif call == "create":
                        v = cx.VDI.create({"SR": sr, "virtual_size": str(8 << 20), "name_label": "c", "type": "user",
                                           "sharable": False, "read_only": False, "other_config": {}})
                    elif call == "snapshot":
                        snap = cx.VDI.snapshot(v, {})
                    else:
                        cx.VDI.destroy(snap); cx.VDI.destroy(v)
                except Exception as e:
                    with lock: errors.append(repr(e)[:200])
                with lock: latencies.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    for th in threads: th.start()
    for th in threads: th.join()
    wall = time.perf_counter() - t0
    print("%d concurrent SDK clients x %d rounds (records read; VDI create, snapshot, destroy) on one SR, %s store:" % (CLIENTS, ITERATIONS, STORE))
    print("  calls/s %.1f   p50 %.0f ms   p99 %.0f ms   errors %d" % (len(latencies) / wall, pct(latencies, 50), pct(latencies, 99), len(errors)))
    for e in errors[:5]: print("   ", e)
finally:
    daemon.terminate(); daemon.wait()
    if STORE == "postgres":
        subprocess.run([HERE + "/../scripts/postgres-test-server.sh", "stop", root + "/pg"])
    if os.environ.get("KEEP"): print("kept", root)
    else: subprocess.run(["rm", "-rf", root])
