// Placeholder replaced by the benchmark helper: makes benchmark inputs and times in-process
// operations for bench/run.sh.
print("vhd-bench: not built yet")
