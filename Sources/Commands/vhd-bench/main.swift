// vhd-bench: makes benchmark inputs with the VHD library and times in-process operations
// (snapshot, scan) for bench/run.sh. One file per subcommand.
VHDBench.main()
