print("vhd")
